"""The `openai` client (from PyPI) against `kiln serve`'s OpenAI images API."""
import base64
import os
import re

import openai
import pytest

from conftest import PASSWORD, USER, kiln_generate


@pytest.fixture
def client(server):
    # OpenAI clients send the api_key as a Bearer token; Kiln takes `user:password` there.
    return openai.OpenAI(base_url=f"http://127.0.0.1:{server.port}/v1", api_key=f"{USER}:{PASSWORD}", max_retries=0, timeout=120)


def test_images_generate_is_kiln_generate(client, workdir, models):
    response = client.images.generate(model="tiny-sd1", prompt="a blue fox", n=1, size="64x64", response_format="b64_json",
                                      extra_body={"steps": 5})
    assert response.created > 0 and len(response.data) == 1
    png = base64.b64decode(response.data[0].b64_json)
    assert png.startswith(b"\x89PNG")
    # The model's defaults and a random seed, recorded in the PNG's parameters chunk.
    seed = re.search(rb"Seed: (\d+)", png).group(1).decode()
    expected = kiln_generate(workdir, models["sd1"], os.path.join(workdir, "openai.png"), "--prompt", "a blue fox", "--seed", seed,
                             "--width", "64", "--height", "64", "--steps", "5")
    assert png == expected


def test_several_images_and_unknown_model_name_ignored(client):
    response = client.images.generate(model="dall-e-3", prompt="two owls", n=2, size="64x64", response_format="b64_json",
                                      extra_body={"steps": 2})
    assert len(response.data) == 2 and all(base64.b64decode(item.b64_json).startswith(b"\x89PNG") for item in response.data)


def test_url_response_format(client, server):
    response = client.images.generate(prompt="a url", n=1, size="64x64", response_format="url", extra_body={"steps": 1})
    assert response.data[0].url.startswith(f"http://127.0.0.1:{server.port}/kiln/v1/jobs/")


def test_models_list(client):
    ids = [model.id for model in client.models.list()]
    assert "tiny-sd1" in ids and "tiny-sd2" in ids


def test_bad_size_is_a_client_error(client):
    with pytest.raises(openai.UnprocessableEntityError) as refused:
        client.images.generate(prompt="x", size="65x64", response_format="b64_json", extra_body={"steps": 1})
    assert "64" in str(refused.value)
    with pytest.raises(openai.UnprocessableEntityError):
        client.images.generate(prompt="x", size="big", response_format="b64_json")


def test_wrong_key_is_401(server):
    wrong = openai.OpenAI(base_url=f"http://127.0.0.1:{server.port}/v1", api_key="alice:nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.images.generate(prompt="x", size="64x64", response_format="b64_json")
