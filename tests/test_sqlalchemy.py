"""SQLAlchemy on ferropg: postgresql+ferropg:// (sync) and postgresql+ferropg_async://."""

from __future__ import annotations

import datetime
import enum
import uuid

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Mood(enum.Enum):
    happy = "happy"
    sad = "sad"


class Base(DeclarativeBase):
    pass


class Thing(Base):
    __tablename__ = "sa_things"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50))
    tags: Mapped[list[str]] = mapped_column(pg.ARRAY(sa.Text), default=list)
    data: Mapped[dict] = mapped_column(pg.JSONB, default=dict)
    doc: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    key: Mapped[uuid.UUID] = mapped_column(sa.Uuid, default=uuid.uuid4)
    mood: Mapped[Mood] = mapped_column(sa.Enum(Mood), default=Mood.happy)
    span: Mapped[object] = mapped_column(pg.INT4RANGE, nullable=True)
    at: Mapped[datetime.datetime] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    price: Mapped[float] = mapped_column(sa.Numeric(10, 2), nullable=True)


def _url(dsn: str, driver: str) -> str:
    return dsn.replace("postgresql://", f"postgresql+{driver}://", 1)


@pytest.fixture
def engine(dsn):
    e = sa.create_engine(_url(dsn, "ferropg"))
    Base.metadata.drop_all(e)
    Base.metadata.create_all(e)
    try:
        yield e
    finally:
        Base.metadata.drop_all(e)
        e.dispose()


def test_the_dialects_are_found_by_name(dsn):
    e = sa.create_engine(_url(dsn, "ferropg"))
    assert e.dialect.driver == "ferropg" and not e.dialect.is_async
    a = create_async_engine(_url(dsn, "ferropg"))
    assert a.dialect.driver == "ferropg_async" and a.dialect.is_async
    e.dispose()


def test_orm_round_trip_with_postgres_types(engine):
    at = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.UTC)
    with Session(engine) as s:
        s.add(
            Thing(
                id=1,
                name="a",
                tags=["x", "y"],
                data={"k": [1, 2]},
                doc={"d": None},
                mood=Mood.sad,
                span=pg.Range(1, 10),
                at=at,
                price=2.5,
            )
        )
        s.add(Thing(id=2, name="b"))
        s.commit()
    with Session(engine) as s:
        t = s.get(Thing, 1)
        assert t.tags == ["x", "y"] and t.data == {"k": [1, 2]} and t.doc == {"d": None}
        assert t.mood is Mood.sad and isinstance(t.key, uuid.UUID)
        assert t.span == pg.Range(1, 10) and t.at == at and float(t.price) == 2.5
        q = sa.select(Thing.name).where(
            Thing.tags.contains(["y"]), Thing.data["k"][0].as_integer() == 1
        )
        assert s.scalars(q).all() == ["a"]
        q = sa.select(Thing.id).where(Thing.id.in_([1, 2])).order_by(Thing.id)
        assert s.scalars(q).all() == [1, 2]


def test_core_rowcount_transactions_and_isolation(engine):
    things = Thing.__table__
    with engine.begin() as c:
        c.execute(things.insert(), [{"id": i, "name": f"n{i}"} for i in range(10)])
    with engine.connect() as c:
        r = c.execute(things.update().where(things.c.id < 3).values(name="z"))
        assert r.rowcount == 3
        c.rollback()
        assert c.scalar(sa.select(sa.func.count()).where(things.c.name == "z")) == 0
    with engine.connect().execution_options(isolation_level="SERIALIZABLE") as c:
        assert c.exec_driver_sql("SHOW transaction_isolation").scalar() == "serializable"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(things.delete().where(things.c.id == 9))
    with engine.connect() as c:
        assert c.scalar(sa.select(sa.func.count()).select_from(things)) == 9


def test_stream_results_reads_in_pieces(engine):
    with engine.connect() as c:
        c.execute(Thing.__table__.insert(), [{"id": i, "name": "s"} for i in range(500)])
        result = c.execution_options(stream_results=True, max_row_buffer=50).execute(
            sa.select(Thing.id).order_by(Thing.id)
        )
        import ferropg.dbapi

        assert isinstance(result.cursor, ferropg.dbapi.ServerCursor)
        ids = [r.id for part in result.partitions(100) for r in part]
        assert ids == list(range(500))
        c.rollback()


def test_errors_are_sqlalchemys(engine):
    with Session(engine) as s:
        s.add(Thing(id=1, name="a"))
        s.commit()
        s.add(Thing(id=1, name="b"))
        with pytest.raises(sa.exc.IntegrityError) as e:
            s.commit()
        assert e.value.orig.sqlstate == e.value.orig.pgcode == "23505"


def test_statements_and_types_made_anew_after_ddl(engine):
    # The same statement text over a table, then an enum, dropped and made again with
    # other types: cached plans and type codecs must not outlive the DDL (SQLAlchemy's
    # own suite does this everywhere: "cached plan must not change result type", "cache
    # lookup failed for type").
    meta = sa.MetaData()
    with engine.connect() as c:
        for kind in (sa.Integer, sa.Text, pg.ENUM("a", "b", name="sa_anew_kind")):
            meta.clear()
            t = sa.Table("sa_anew", meta, sa.Column("v", kind))
            meta.drop_all(c)
            meta.create_all(c)
            value = {sa.Integer: 1, sa.Text: "x"}.get(kind, "b")
            c.execute(t.insert(), {"v": value})
            assert c.scalar(sa.select(t.c.v)) == value
        meta.drop_all(c)
        c.commit()


def test_readonly_holds_for_the_next_transaction(engine):
    options = {"isolation_level": "SERIALIZABLE", "postgresql_readonly": True}
    with engine.connect().execution_options(**options) as c:
        assert c.exec_driver_sql("SHOW transaction_read_only").scalar() == "on"
    with engine.connect() as c:
        assert c.exec_driver_sql("SHOW transaction_read_only").scalar() == "off"


def test_the_test_suite_finds_postgresql_provisioning():
    import sys

    from ferropg.sqlalchemy import FerropgAsyncDialect, FerropgDialect

    for dialect in (FerropgDialect, FerropgAsyncDialect):
        sys.modules.pop("sqlalchemy.dialects.postgresql.provision", None)
        dialect.load_provisioning()
        assert "sqlalchemy.dialects.postgresql.provision" in sys.modules


async def test_async_engine(dsn):
    e = create_async_engine(_url(dsn, "ferropg_async"))
    try:
        async with e.begin() as c:
            await c.run_sync(Base.metadata.drop_all)
            await c.run_sync(Base.metadata.create_all)
            await c.execute(Thing.__table__.insert(), [{"id": 1, "name": "x", "tags": ["t"]}])
        async with e.connect() as c:
            row = (await c.execute(sa.select(Thing.name, Thing.tags))).one()
            assert row == ("x", ["t"])
            await c.run_sync(Base.metadata.drop_all)
            await c.commit()
    finally:
        await e.dispose()


async def test_async_errors_are_sqlalchemys(dsn):
    # Not asyncpg's classes (ferropg raises its own), nor an ImportError without asyncpg.
    e = create_async_engine(_url(dsn, "ferropg_async"))
    try:
        async with e.connect() as c:
            await c.exec_driver_sql("CREATE TEMP TABLE sa_uniq (id int PRIMARY KEY)")
            await c.exec_driver_sql("INSERT INTO sa_uniq VALUES (1)")
            with pytest.raises(sa.exc.IntegrityError) as err:
                await c.exec_driver_sql("INSERT INTO sa_uniq VALUES (1)")
            assert err.value.orig.sqlstate == err.value.orig.pgcode == "23505"
            await c.rollback()
            with pytest.raises(sa.exc.ProgrammingError):
                await c.exec_driver_sql("SELECT * FROM sa_no_such_table")
    finally:
        await e.dispose()


_ENV_PY = """
from alembic import context
from sqlalchemy import create_engine

url = context.config.get_main_option("sqlalchemy.url")
engine = create_engine(url)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
"""

_MIGRATIONS = {
    "0001_people.py": """
revision = "0001"
down_revision = None
from alembic import op
import sqlalchemy as sa

def upgrade():
    op.create_table("al_people", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("name", sa.Text, nullable=False))

def downgrade():
    op.drop_table("al_people")
""",
    "0002_email.py": """
revision = "0002"
down_revision = "0001"
from alembic import op
import sqlalchemy as sa

def upgrade():
    op.add_column("al_people", sa.Column("email", sa.Text))
    op.create_index("al_people_email", "al_people", ["email"], unique=True)
    op.execute("INSERT INTO al_people (name, email) VALUES ('ann', 'ann@example.com')")

def downgrade():
    op.drop_index("al_people_email", "al_people")
    op.drop_column("al_people", "email")
""",
    "0003_kind.py": """
revision = "0003"
down_revision = "0002"
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

kind = pg.ENUM("staff", "guest", name="al_kind")

def upgrade():
    kind.create(op.get_bind())
    op.add_column("al_people", sa.Column("kind", kind, server_default="guest"))

def downgrade():
    op.drop_column("al_people", "kind")
    kind.drop(op.get_bind())
""",
}


def test_alembic_upgrades_and_downgrades(dsn, tmp_path):
    (tmp_path / "versions").mkdir()
    (tmp_path / "env.py").write_text(_ENV_PY)
    (tmp_path / "script.py.mako").write_text("")
    for name, text in _MIGRATIONS.items():
        (tmp_path / "versions" / name).write_text(text)
    cfg = Config()
    cfg.set_main_option("script_location", str(tmp_path))
    cfg.set_main_option("sqlalchemy.url", _url(dsn, "ferropg"))
    engine = sa.create_engine(_url(dsn, "ferropg"))
    try:
        command.upgrade(cfg, "head")
        with engine.connect() as c:
            row = c.exec_driver_sql("SELECT name, email, kind::text FROM al_people").one()
            assert tuple(row) == ("ann", "ann@example.com", "guest")
            assert c.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0003"
        command.downgrade(cfg, "0001")
        with engine.connect() as c:
            cols = (
                c.exec_driver_sql(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = 'al_people' ORDER BY ordinal_position"
                )
                .scalars()
                .all()
            )
            assert cols == ["id", "name"]
        command.downgrade(cfg, "base")
        with engine.connect() as c:
            assert c.exec_driver_sql("SELECT to_regclass('al_people')").scalar() is None
    finally:
        with engine.begin() as c:
            c.exec_driver_sql("DROP TABLE IF EXISTS al_people, alembic_version")
            c.exec_driver_sql("DROP TYPE IF EXISTS al_kind")
        engine.dispose()
