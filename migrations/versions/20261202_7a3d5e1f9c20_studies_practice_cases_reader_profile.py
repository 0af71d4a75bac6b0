"""studies: practice cases read first and never counted; a reader profile asked once

Revision ID: 7a3d5e1f9c20
Revises: 5c1e2a9d7b40
Create Date: 2026-12-02 16:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "7a3d5e1f9c20"
down_revision: str | Sequence[str] | None = "5c1e2a9d7b40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("practice_cases", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("profile_fields", sa.JSON(), server_default="[]", nullable=False)
        )
        batch_op.create_check_constraint(
            op.f("ck_studies_practice_cases_nonnegative"), "practice_cases >= 0"
        )
    with op.batch_alter_table("study_cases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("practice", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("readers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("profile", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("profile_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("readers", schema=None) as batch_op:
        batch_op.drop_column("profile_at")
        batch_op.drop_column("profile")
    with op.batch_alter_table("study_cases", schema=None) as batch_op:
        batch_op.drop_column("practice")
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_studies_practice_cases_nonnegative"), type_="check")
        batch_op.drop_column("profile_fields")
        batch_op.drop_column("practice_cases")
