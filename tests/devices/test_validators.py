"""Camera addresses are masked wherever they are shown; greetings use known placeholders."""

import pytest
from django.core.exceptions import ValidationError

from devices.validators import mask_camera_url, unmask_camera_url, validate_greeting


@pytest.mark.parametrize(
    "url, masked",
    [
        ("rtsp://admin:secret@10.0.0.5:554/s1", "rtsp://admin:***@10.0.0.5:554/s1"),
        ("rtsp://admin:p%40ss@cam.local/s1?channel=2", "rtsp://admin:***@cam.local/s1?channel=2"),
        ("rtsp://:secret@10.0.0.5/s1", "rtsp://:***@10.0.0.5/s1"),
        ("rtsp://admin@10.0.0.5/s1", "rtsp://admin@10.0.0.5/s1"),
        ("http://10.0.0.5/mjpeg", "http://10.0.0.5/mjpeg"),
        ("", ""),
    ],
)
def test_a_camera_password_is_masked(url, masked):
    assert mask_camera_url(url) == masked


def test_the_mask_sent_back_restores_the_stored_password_only():
    stored = "rtsp://admin:secret@10.0.0.5/s1"
    assert unmask_camera_url("rtsp://admin:***@10.0.0.5/s2", stored) == "rtsp://admin:secret@10.0.0.5/s2"
    assert unmask_camera_url("rtsp://admin:new@10.0.0.5/s1", stored) == "rtsp://admin:new@10.0.0.5/s1"
    assert unmask_camera_url("rtsp://10.0.0.5/s1", stored) == "rtsp://10.0.0.5/s1"


@pytest.mark.parametrize("template", ["Welcome, {name}!", "{company} greets {name}", "No placeholder at all", ""])
def test_good_greetings_pass(template):
    validate_greeting(template)


@pytest.mark.parametrize("template", ["Hi {first}", "Hi {name", "Hi {}", "Hi {name.upper}", "{company[0]}"])
def test_bad_greetings_fail_with_their_code(template):
    with pytest.raises(ValidationError) as caught:
        validate_greeting(template)
    assert caught.value.code == "greeting_template_invalid"
