"""Settings: secrets kept out of reprs and logs, and handed whole to the processes that need them."""

from common.settings import Settings


def test_secrets_stay_out_of_the_settings_repr_and_reach_a_child_process_whole() -> None:
    settings = Settings(s3_secret_key="s3-secret-value", webhook_secret="hook-secret-value")
    assert "s3-secret-value" not in repr(settings) and "hook-secret-value" not in str(settings)
    env = settings.as_env()
    assert env["S3_SECRET_KEY"] == "s3-secret-value" and env["WEBHOOK_SECRET"] == "hook-secret-value"
    assert Settings(**{k.lower(): v for k, v in env.items()}) == settings
