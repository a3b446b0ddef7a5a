import pytest

from gavel.settings import SettingsError, load_settings

REQUIRED = {
    "GAVEL_DATABASE_URL": "postgresql://gavel@127.0.0.1:5432/gavel",
    "GAVEL_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
    "GAVEL_OPA_URL": "http://127.0.0.1:8181",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(__import__("os").environ):
        if name.startswith("GAVEL_"):
            monkeypatch.delenv(name)
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_reads_sections_from_prefixed_variables(env: pytest.MonkeyPatch) -> None:
    env.setenv("GAVEL_HTTP_PORT", "9000")
    env.setenv("GAVEL_WORKER_CONCURRENCY", "7")
    env.setenv("GAVEL_KAFKA_CONSUMER_GROUP", "evaluators")
    env.setenv("GAVEL_LOG_LEVEL", "debug")
    settings = load_settings()
    assert settings.database.url == REQUIRED["GAVEL_DATABASE_URL"]
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.opa.url == "http://127.0.0.1:8181"
    assert settings.http.port == 9000
    assert settings.worker.concurrency == 7
    assert settings.kafka.consumer_group == "evaluators"
    assert settings.log_level == "DEBUG"


def test_defaults_bind_to_loopback(env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert (settings.http.host, settings.http.port) == ("127.0.0.1", 8080)
    assert settings.kafka.topic_stack_events == "gavel.stack-events"


def test_publish_checks_use_the_evaluating_opa_unless_told_otherwise(
        env: pytest.MonkeyPatch) -> None:
    assert load_settings().opa.checks_url == "http://127.0.0.1:8181"
    env.setenv("GAVEL_OPA_CHECK_URL", "http://127.0.0.1:8282/")
    assert load_settings().opa.checks_url == "http://127.0.0.1:8282"


def test_loaded_pack_versions_are_bounded_unless_zero(env: pytest.MonkeyPatch) -> None:
    assert load_settings().opa.max_pack_versions == 100
    env.setenv("GAVEL_OPA_MAX_PACK_VERSIONS", "0")
    assert load_settings().opa.max_pack_versions == 0
    env.setenv("GAVEL_OPA_MAX_PACK_VERSIONS", "8")
    assert load_settings().opa.max_pack_versions == 8


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("GAVEL_HTTP_PORT", "99999", "GAVEL_HTTP_PORT"),
    ("GAVEL_HTTP_PORT", "eighty", "GAVEL_HTTP_PORT"),
    ("GAVEL_DATABASE_URL", "mysql://x", "GAVEL_DATABASE_URL: must start with postgresql://"),
    ("GAVEL_KAFKA_BOOTSTRAP_SERVERS", "localhost", "GAVEL_KAFKA_BOOTSTRAP_SERVERS"),
    ("GAVEL_OPA_URL", "127.0.0.1:8181", "GAVEL_OPA_URL: must start with http"),
    ("GAVEL_OPA_CHECK_URL", "opa-check:8181", "GAVEL_OPA_CHECK_URL: must start with http"),
    ("GAVEL_OPA_MAX_PACK_VERSIONS", "-1", "GAVEL_OPA_MAX_PACK_VERSIONS"),
    ("GAVEL_OPA_MAX_PACK_VERSIONS", "7", "GAVEL_OPA_MAX_PACK_VERSIONS: must be 0 .* at least 8"),
    ("GAVEL_WORKER_CONCURRENCY", "0", "GAVEL_WORKER_CONCURRENCY"),
    ("GAVEL_KAFKA_MAX_MESSAGE_BYTES", "65536", "GAVEL_KAFKA_MAX_MESSAGE_BYTES"),
    ("GAVEL_LOG_LEVEL", "loud", "GAVEL_LOG_LEVEL"),
])
def test_wrong_value_names_the_variable(env: pytest.MonkeyPatch, variable: str, value: str,
                                        expected: str) -> None:
    env.setenv(variable, value)
    with pytest.raises(SettingsError, match=expected):
        load_settings()


def test_missing_required_variables_are_all_named(env: pytest.MonkeyPatch) -> None:
    for name in REQUIRED:
        env.delenv(name)
    with pytest.raises(SettingsError) as info:
        load_settings()
    for name in REQUIRED:
        assert f"{name}: is required" in str(info.value)
