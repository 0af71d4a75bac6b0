"""studies: the viewer's window presets

Revision ID: 9b4e6c2d1a58
Revises: 7a3d5e1f9c20
Create Date: 2026-12-02 16:15:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "9b4e6c2d1a58"
down_revision: str | Sequence[str] | None = "7a3d5e1f9c20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("window_presets", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.drop_column("window_presets")
