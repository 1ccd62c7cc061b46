"""Command line: `python -m app.cli run|migrate|create-demo|create-operator`."""

import asyncio
import subprocess
import sys
import time

import click

from app.auth import service as auth_service
from app.core.config import get_settings
from app.core.db import create_engine, create_sessionmaker, transaction
from app.core.security import SecretBox
from app.sellers import service as sellers_service
from app.sync import service as sync_service
from app.worker.lanes import LANES

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo"  # noqa: S105 - documented development-only credentials


@click.group()
def cli() -> None:
    """Sellerdesk commands."""


@cli.command()
def run() -> None:
    """Everything up in the foreground (embedded Postgres/Redis unless URLs are set)."""
    from app.dev.supervisor import main

    sys.exit(main())


@cli.command()
def migrate() -> None:
    """Upgrade the database in DATABASE_URL to the latest migration."""
    get_settings().require_database_url()
    subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], check=True)


async def _ensure_operator(
    email: str, password: str, seller_name: str, role: str, wb_token: str | None = None
) -> bool:
    """Create the seller and its owner unless the email exists; with `wb_token`, (re)connect its
    Wildberries account and queue a first sync. True when the operator was created."""
    settings = get_settings()
    engine = create_engine(settings, pool_size=1)
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            user = await auth_service.find_user_by_email(session, email)
            created = user is None
            if user is None:
                seller = await sellers_service.create_seller(session, seller_name)
                user = await auth_service.create_user(
                    session, seller_id=seller.id, email=email, password=password, role=role
                )
            if wb_token:
                box = SecretBox(settings.secrets_key.get_secret_value())
                await sellers_service.ensure_account(
                    session, box, seller_id=user.seller_id, marketplace="wildberries",
                    token=wb_token,
                )  # fmt: skip
                await sync_service.request_runs(
                    session, user.seller_id, sync_service.CHANNELS, trigger="manual"
                )
            return created
    finally:
        await engine.dispose()


@cli.command("create-demo")
@click.option("--wb-token", default=None, help="Connect the demo seller to this (sandbox) token.")
def create_demo(wb_token: str | None) -> None:
    """Create the demo seller and operator (development only; idempotent)."""
    if get_settings().env != "development":
        raise click.ClickException("the demo operator exists only in development (ENV)")
    created = asyncio.run(
        _ensure_operator(DEMO_EMAIL, DEMO_PASSWORD, "Demo shop", "owner", wb_token)
    )
    click.echo(f"demo operator {DEMO_EMAIL} {'created' if created else 'already exists'}")
    if wb_token:
        click.echo("demo seller connected to the sandbox; first sync queued")


@cli.command("create-operator")
@click.option("--email", required=True)
@click.option("--seller-name", required=True, help="Name of the new seller the operator owns.")
@click.password_option()
def create_operator(email: str, seller_name: str, password: str) -> None:
    """Create a seller with its owner account (for real deployments)."""
    if len(password) < 8:
        raise click.ClickException("the password needs at least 8 characters")
    if not asyncio.run(_ensure_operator(email, password, seller_name, "owner")):
        raise click.ClickException(f"a user with email {email} already exists")
    click.echo(f"created seller {seller_name!r} with owner {email}")


@cli.command("check-heartbeat")
@click.option("--max-age", default=60.0, show_default=True, help="Seconds.")
@click.option(
    "--lane",
    type=click.Choice([lane.name for lane in LANES]),
    help="Check that this lane has a live consumer instead of beat's heartbeat.",
)
@click.option("--node", help="With --lane: only this worker counts (e.g. w-sync@$HOSTNAME).")
def check_heartbeat(max_age: float, lane: str | None, node: str | None) -> None:
    """Exit non-zero unless the heartbeat is fresh (container probe): beat's heartbeat run by the
    control lane, or with --lane the stamp of a worker consuming that lane."""
    from app.core.redis import create_redis
    from app.worker import heartbeat

    async def last() -> float | None:
        redis = create_redis(get_settings().require_redis_url())
        try:
            if lane is None:
                return await heartbeat.last_beat(redis)
            stamps = await heartbeat.lane_consumers(redis, lane)
        finally:
            await redis.aclose()
        if node is not None:
            return stamps.get(node)
        return max(stamps.values(), default=None)

    stamp = asyncio.run(last())
    seconds = None if stamp is None else time.time() - stamp
    what = "worker heartbeat" if lane is None else f"lane {lane} heartbeat"
    if seconds is None or seconds > max_age:
        raise click.ClickException(f"{what} is stale: {seconds}")
    click.echo(f"{what} {seconds:.1f}s ago")


if __name__ == "__main__":
    cli()
