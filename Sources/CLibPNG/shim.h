// Debian's libpng-dev (libpng16); pkg-config `libpng` supplies the include path elsewhere.
#include <png.h>
