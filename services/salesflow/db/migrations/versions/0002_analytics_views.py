"""analytics views: funnel, AI ROI and attribution per tenant and day (UTC)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

VIEWS = {
    "funnel_daily": """
        SELECT tenant_id, (occurred_at AT TIME ZONE 'UTC')::date AS day, stage,
               count(DISTINCT lead_id) AS leads, count(*) AS events
        FROM funnel_facts
        GROUP BY tenant_id, day, stage
    """,
    "ai_roi_daily": """
        SELECT tenant_id, (occurred_at AT TIME ZONE 'UTC')::date AS day,
               count(*) AS actions,
               count(*) FILTER (WHERE outcome = 'succeeded') AS succeeded,
               sum(cost_usd) AS cost_usd, sum(value_usd) AS value_usd,
               sum(value_usd) / nullif(sum(cost_usd), 0) AS roi
        FROM ai_action_facts
        GROUP BY tenant_id, day
    """,
    "attribution_daily": """
        SELECT tenant_id, (occurred_at AT TIME ZONE 'UTC')::date AS day, touch,
               coalesce(source, '(none)') AS source, coalesce(channel, '(none)') AS channel,
               count(*) AS touches, count(DISTINCT lead_id) AS leads,
               count(*) FILTER (WHERE autopilot_action_id IS NOT NULL) AS autopilot_touches
        FROM attribution_touches
        GROUP BY tenant_id, day, touch, coalesce(source, '(none)'), coalesce(channel, '(none)')
    """,
}


def upgrade() -> None:
    for name, query in VIEWS.items():
        op.execute(f"CREATE OR REPLACE VIEW {name} AS {query}")


def downgrade() -> None:
    for name in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {name}")
