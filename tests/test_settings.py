"""Settings come from the environment only; bad values stop the process loudly."""

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from kangaroo.env import envbool, envint, envlist, envsecret

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "p" * 30 + "-production-secret-key-for-the-check-0123456789",
    "ALLOWED_HOSTS": "kangaroo.example.com",
    "DATABASE_URL": "postgres://kangaroo@db.example.com:5432/kangaroo",
    "REDIS_URL": "redis://cache.example.com:6379/0",
    "EMAIL_URL": "smtp+tls://mailer:secret@smtp.example.com:587",
}


def settings_in_subprocess(env: dict[str, str], tmp_path, *names: str) -> dict:
    """Import the settings in a clean interpreter with exactly `env` set."""
    code = (
        "import json, django; from django.conf import settings; django.setup(); "
        f"print(json.dumps({{n: str(getattr(settings, n)) for n in {list(names)!r}}}))"
    )
    clean = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "kangaroo.settings", "VAR_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", code], env=clean | env, capture_output=True, text=True, cwd=settings.BASE_DIR
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_with_no_variables_it_runs_embedded(tmp_path):
    values = settings_in_subprocess({}, tmp_path, "DATABASES", "JOBS_INLINE", "CHANNEL_LAYERS", "EMAIL_BACKEND")
    assert "sqlite3" in values["DATABASES"] and str(tmp_path) in values["DATABASES"]
    assert values["JOBS_INLINE"] == "True"
    assert "InMemoryChannelLayer" in values["CHANNEL_LAYERS"]
    assert values["EMAIL_BACKEND"].endswith("console.EmailBackend")


def manage(tmp_path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {"PATH": os.environ["PATH"], "VAR_DIR": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        env=clean | (env or {}),
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
    )


def test_importing_the_settings_writes_nothing(tmp_path):
    var = tmp_path / "var"
    values = settings_in_subprocess({"VAR_DIR": str(var)}, tmp_path, "SECRET_KEY_PER_PROCESS", "MEDIA_ROOT")
    assert values["SECRET_KEY_PER_PROCESS"] == "True"  # no key file yet: one made up in memory
    assert not var.exists()
    assert list(tmp_path.iterdir()) == []


def test_prepare_creates_var_and_a_secret_key_once(tmp_path):
    var = tmp_path / "var"
    result = manage(var, "prepare")
    assert result.returncode == 0, result.stderr
    key_file = var / "secret_key"
    key = key_file.read_text()
    assert len(key) >= 50
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert (var / "media").is_dir()
    values = settings_in_subprocess({"VAR_DIR": str(var)}, tmp_path, "SECRET_KEY", "SECRET_KEY_PER_PROCESS")
    assert values == {"SECRET_KEY": key, "SECRET_KEY_PER_PROCESS": "False"}

    assert manage(var, "prepare").returncode == 0
    assert key_file.read_text() == key  # kept: a new key would sign everyone out


def test_prepare_writes_no_key_when_one_is_set(tmp_path):
    result = manage(tmp_path, "prepare", env={"SECRET_KEY": PRODUCTION["SECRET_KEY"]})
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "secret_key").exists()


def test_check_deploy_refuses_a_key_of_the_process_own(tmp_path):
    env = {name: value for name, value in PRODUCTION.items() if name != "SECRET_KEY"}
    result = manage(tmp_path, "check", "--deploy", env=env)
    assert result.returncode != 0
    assert "kangaroo.E001" in result.stderr + result.stdout


def test_production_variables_switch_every_engine(tmp_path):
    values = settings_in_subprocess(
        PRODUCTION, tmp_path, "DATABASES", "JOBS_INLINE", "CHANNEL_LAYERS", "EMAIL_BACKEND", "EMAIL_HOST"
    )
    assert "postgresql" in values["DATABASES"] and "'pool'" in values["DATABASES"]
    assert "'CONN_MAX_AGE': 0" in values["DATABASES"]
    assert values["JOBS_INLINE"] == "False"
    assert "RedisPubSubChannelLayer" in values["CHANNEL_LAYERS"]
    assert values["EMAIL_BACKEND"].endswith("smtp.EmailBackend")
    assert values["EMAIL_HOST"] == "smtp.example.com"


def test_check_deploy_is_clean_with_the_production_variables(tmp_path):
    clean = {"PATH": os.environ["PATH"], "VAR_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=clean | PRODUCTION,
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG must be a boolean"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY must be at least 50"),
        ({"PASSWORD_RESET_TIMEOUT": "soon"}, "PASSWORD_RESET_TIMEOUT must be an integer"),
        ({"MEDIA_STORAGE_URL": "ftp://media.example.com/kangaroo"}, "MEDIA_STORAGE_URL must look like s3://"),
    ],
)
def test_a_bad_value_stops_start_up_with_its_name(tmp_path, env, message):
    clean = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "kangaroo.settings", "VAR_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=clean | env,
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
    )
    assert result.returncode != 0
    assert message in result.stderr


def test_the_typed_helpers(monkeypatch, tmp_path):
    monkeypatch.setenv("X_BOOL", "Yes")
    assert envbool("X_BOOL", False) is True
    monkeypatch.setenv("X_INT", "5")
    assert envint("X_INT", 1, minimum=1) == 5
    monkeypatch.setenv("X_INT", "0")
    with pytest.raises(ImproperlyConfigured):
        envint("X_INT", 1, minimum=1)
    monkeypatch.setenv("X_LIST", "a, b,,c")
    assert envlist("X_LIST", []) == ["a", "b", "c"]
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    monkeypatch.setenv("X_SECRET_FILE", str(secret))
    assert envsecret("X_SECRET") == "from-a-file"
    monkeypatch.setenv("X_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured):
        envsecret("X_SECRET")


def test_every_variable_the_settings_read_is_in_the_example_file():
    import re
    from pathlib import Path

    source = Path(settings.BASE_DIR, "kangaroo", "settings.py").read_text()
    read = set(re.findall(r'env(?:str|bool|int|list|secret|storage)\(\s*"([A-Z_]+)"', source))
    example = Path(settings.BASE_DIR, ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z_]+)=", example, flags=re.MULTILINE))
    assert read <= listed, f"missing from .env.example: {sorted(read - listed)}"
