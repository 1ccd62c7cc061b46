"""`python -m app.sandbox [--host 127.0.0.1] [--port 8100] [--demo] [--state-file PATH]`."""

from pathlib import Path

import click
import uvicorn

from app.sandbox import persist
from app.sandbox.app import create_sandbox_app
from app.sandbox.config import SandboxConfig, SellerSpec
from app.sandbox.persist import StateFileError
from app.sandbox.state import Sandbox

DEMO = SellerSpec(name="demo", seed=42, reviews=300, questions=120, chats=40)


def _seed_demo(sandbox: Sandbox) -> None:
    seller, _ = sandbox.create_seller(DEMO)
    click.echo(
        f"sandbox: demo seller {seller.name!r} (id {seller.id}): {DEMO.reviews} reviews, "
        f"{DEMO.questions} questions, {DEMO.chats} chats; token:\n{seller.token}"
    )
    # One parseable line for supervisors.
    click.echo(f"SANDBOX_DEMO_TOKEN={seller.token}")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8100, show_default=True, type=int)
@click.option("--demo", is_flag=True, help='Seed one seller named "demo" and print its token.')
@click.option("--events-page-size", default=1000, show_default=True, type=click.IntRange(1))
@click.option("--log-level", default="info", show_default=True)
@click.option(
    "--state-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="SANDBOX_STATE_FILE",
    help="Keep sellers, tokens, revocations and added items across restarts in this file "
    "(read at start, written after every change).",
)
def main(
    host: str,
    port: int,
    demo: bool,
    events_page_size: int,
    log_level: str,
    state_file: Path | None,
) -> None:
    """Wildberries sandbox: feedbacks-api and buyer-chat-api on one host, admin under /_sandbox."""
    config = SandboxConfig(events_page_size=events_page_size, state_file=state_file)
    try:
        app = create_sandbox_app(config)
    except StateFileError as exc:
        raise click.ClickException(f"{exc} (move it away to start empty)") from exc
    if state_file is not None:
        sellers = len(app.state.sandbox.sellers)
        click.echo(f"sandbox: state file {state_file} ({sellers} sellers restored)")
    if demo:
        _seed_demo(app.state.sandbox)
        if state_file is not None:  # seeded outside a request: no request wrote it
            persist.save(app.state.sandbox, state_file)
    click.echo(f"sandbox: http://{host}:{port} (admin /_sandbox, docs /docs)")
    uvicorn.run(app, host=host, port=port, log_level=log_level)


if __name__ == "__main__":
    main()
