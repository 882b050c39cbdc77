"""``drkit lint network``: prove in CI that development and test cannot reach production."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click

from drkit.cli.common import get_app
from drkit.cli.lint import emit_lint_report
from drkit.errors import InputError
from drkit.lint.findings import SEVERITIES


def _save(folder: Path, responses: list[tuple[str, dict[str, Any]]]) -> None:
    """Write live responses as export files that lint exactly like the live run."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, body in responses:
            stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name.split(":", 1)[-1])
            (folder / f"{stem}.json").write_text(
                json.dumps(body, indent=2, default=str) + "\n", "utf-8")
    except OSError as exc:
        raise InputError(f"{folder}: cannot save the responses: {exc.strerror}") from None


@click.command("network")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--live", is_flag=True,
              help="Read the cloud now (boto3 / tencentcloud-sdk-python, credentials from "
                   "the usual environment) instead of, or besides, export files.")
@click.option("--cloud", type=click.Choice(["aws", "tencent"]), default="aws",
              show_default=True, help="Which cloud --live reads.")
@click.option("--region", "regions", multiple=True,
              help="Region for --live (repeat for several).")
@click.option("--endpoint", help="API endpoint for --live (a test server); AWS also "
                                 "honours AWS_ENDPOINT_URL.")
@click.option("--save", "save_dir", type=click.Path(path_type=Path),
              help="With --live: also write the responses to this folder as export files.")
@click.option("--environments", "environments_file", type=click.Path(path_type=Path),
              help="Environment mapping (default: environments.toml in a PATH folder; "
                   "otherwise tags only).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif"]), default=None,
              help="Output format (default text; --json means --format json).")
@click.option("--json", "json_output", is_flag=True, help="Same as --format json.")
@click.option("--severity-threshold", type=click.Choice(SEVERITIES), default="low",
              show_default=True, help="Exit 1 if any finding is at or above this severity.")
@click.option("--suppressions", "suppressions_file", type=click.Path(path_type=Path),
              help="Suppressions file (TOML [[suppress]] entries with reason, owner, expires).")
@click.option("--output", "-o", "--out", "output", type=click.Path(path_type=Path),
              help="Write the report to this file instead of stdout.")
def network_command(paths: tuple[Path, ...], live: bool, cloud: str, regions: tuple[str, ...],
                    endpoint: str | None, save_dir: Path | None,
                    environments_file: Path | None, fmt: str | None, json_output: bool,
                    severity_threshold: str, suppressions_file: Path | None,
                    output: Path | None) -> None:
    """Lint network isolation: dev and test must not reach production.

    Reads AWS (describe-security-groups, -instances, -vpcs, -subnets,
    -vpc-peering-connections, -route-tables, -network-acls, rds describe-db-instances) and
    Tencent Cloud (DescribeSecurityGroups and their policies, CVM DescribeInstances,
    DescribeVpcs, DescribeSubnets, DescribeVpcPeeringConnections, CCN attachments,
    DescribeRouteTables, TencentDB DescribeDBInstances) JSON responses from PATH files and
    folders, recognised by their top-level keys, or live with --live. Environments come from
    tags (env=prod/test/dev) or environments.toml. Exit 0 clean, 1 findings at or above the
    threshold, 2 usage or input errors.
    """
    from drkit.lint.network.engine import lint_network, render_network_text

    app = get_app()
    if fmt is None:
        fmt = "json" if (json_output or app.json) else "text"
    responses: list[tuple[str, dict[str, Any]]] = []
    if live:
        if not regions:
            raise InputError("--live needs --region")
        for region in regions:
            if cloud == "aws":
                from drkit.lint.network.aws import fetch_live
                responses += fetch_live(region, endpoint)
            else:
                from drkit.lint.network.tencent import fetch_live as fetch_tencent
                responses += fetch_tencent(region, endpoint)
        if save_dir is not None:
            _save(save_dir, responses)
    elif regions or save_dir or endpoint:
        raise InputError("--region, --endpoint and --save go with --live")
    report = lint_network(list(paths), now=app.clock.now(), threshold=severity_threshold,
                          environments_file=environments_file,
                          suppressions_file=suppressions_file, live=responses)
    emit_lint_report(report, fmt, render_network_text, output, unchecked="input(s)")
