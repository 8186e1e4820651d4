// Only the header matters: the driver itself is in compiler-rt's libFuzzer.
#include "CLibFuzzer.h"
