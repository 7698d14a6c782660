"""An index on chat_request for the latency percentiles per model over a period.

It lives here because only the read side needs it: with (model, created_at, latency_ms) the
percentile queries read the index alone instead of every row of the period.
"""

from django.db import migrations

INDEX = "usage_request_model_latency"


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0001_rollups"),
        ("chat", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON chat_request (model, created_at, latency_ms)",
            f"DROP INDEX IF EXISTS {INDEX}",
        ),
    ]
