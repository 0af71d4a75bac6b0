"""reading: each reader's opaque browser key; a flag and a comment on each case

Revision ID: 5c1e2a9d7b40
Revises: be303d06c3b9
Create Date: 2026-12-02 08:20:00

"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "5c1e2a9d7b40"
down_revision: str | Sequence[str] | None = "be303d06c3b9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("readers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("client_key", sa.String(length=32), nullable=True))
    readers = sa.table("readers", sa.column("id", sa.Integer), sa.column("client_key", sa.String))
    conn = op.get_bind()
    for (reader_id,) in conn.execute(sa.select(readers.c.id)).all():
        conn.execute(
            readers.update()
            .where(readers.c.id == reader_id)
            .values(client_key=secrets.token_hex(16))
        )
    with op.batch_alter_table("readers", schema=None) as batch_op:
        batch_op.alter_column("client_key", existing_type=sa.String(length=32), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_readers_client_key"), ["client_key"])
    with op.batch_alter_table("answers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("flagged", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("comment", sa.Text(), nullable=True))
    with op.batch_alter_table("answer_revisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("flagged", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("comment", sa.Text(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("answer_revisions", schema=None) as batch_op:
        batch_op.drop_column("comment")
        batch_op.drop_column("flagged")
    with op.batch_alter_table("answers", schema=None) as batch_op:
        batch_op.drop_column("comment")
        batch_op.drop_column("flagged")
    with op.batch_alter_table("readers", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_readers_client_key"), type_="unique")
        batch_op.drop_column("client_key")
