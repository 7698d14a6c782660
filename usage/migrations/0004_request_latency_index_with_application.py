"""The per-model latency index also carries application_id, so an application's percentiles read the index alone."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0003_latency_buckets"),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS usage_request_model_latency_app "
            "ON chat_request (model, created_at, latency_ms, application_id)",
            "DROP INDEX IF EXISTS usage_request_model_latency_app",
        ),
        migrations.RunSQL(
            "DROP INDEX IF EXISTS usage_request_model_latency",
            "CREATE INDEX IF NOT EXISTS usage_request_model_latency ON chat_request (model, created_at, latency_ms)",
        ),
    ]
