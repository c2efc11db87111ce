"""`psabridge config check|schema`: validate the settings and rules files; print their JSON Schemas for editors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from psabridge.cli.common import EXIT_CONFIG, ConfigOption, load
from psabridge.connectors.options import option_models
from psabridge.mapping import check_mapping
from psabridge.rules import RulesFileError, load_rules, rules_schema
from psabridge.settings import Settings

app = typer.Typer(help="Validate the configuration, or print its JSON Schema.", no_args_is_help=True)


@app.command("check")
def check(config: ConfigOption = None) -> None:
    """Validate the settings file, the secrets it names, each mapping file and the rules file it references.

    Every problem of every file is reported in one pass (file, line, field path); exit 2 on any.
    """
    settings = load(config, quiet_logging=True)
    typer.echo(
        f"ok: {settings.source}: {len(settings.connections)} connection(s), {len(settings.links)} link(s), "
        f"database {settings.database.split('://', 1)[0]}, broker {settings.broker.split('://', 1)[0]}"
    )
    failed = 0
    checked: set[Path] = set()
    for conn in settings.connections:
        if conn.mapping is None or conn.mapping in checked:
            continue
        checked.add(conn.mapping)
        _mapper, problems = check_mapping(conn.mapping)
        failed += len(problems)
        for problem in problems:
            typer.echo(str(problem), err=True)
        if problems:
            typer.echo(f"{len(problems)} problem(s) in {conn.mapping} (mapping of {conn.name})", err=True)
        else:
            typer.echo(f"ok: {conn.mapping}: mapping of {conn.name}")
    failed += _check_rules(settings)
    if failed:
        raise typer.Exit(EXIT_CONFIG)


def _check_rules(settings: Settings) -> int:
    """Check the rules file the settings name; returns the number of problems printed."""
    if settings.rules is None:
        typer.echo("ok: no rules file (rules:): the built-in checklist runs with its default settings")
        return 0
    try:
        rules = load_rules(settings.rules, tenants=settings.tenants)
    except RulesFileError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        typer.echo(f"{len(exc.problems)} problem(s) in {settings.rules}", err=True)
        return max(1, len(exc.problems))
    enabled = sum(1 for rule, tuned in rules.lineup(None) if tuned is not None)
    typer.echo(
        f"ok: {settings.rules}: {enabled} of {len(rules.rules)} checklist rule(s) enabled, "
        f"{len(rules.document.tenants)} tenant override(s)"
    )
    return 0


@app.command("schema")
def schema(
    rules: Annotated[
        bool, typer.Option("--rules", help="Print the rules file's schema (config/rules.yaml) instead.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Print the JSON Schema of the settings file, or of the rules file (point your editor's YAML plugin at it).

    The schema is the same for every configuration; --config is accepted like on every command (and not read).
    """
    del config
    if rules:
        typer.echo(json.dumps(rules_schema(), indent=2, sort_keys=True))
        return
    document = Settings.model_json_schema(by_alias=True)
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "psabridge settings"
    _document_options(document)
    typer.echo(json.dumps(document, indent=2, sort_keys=True))


def _document_options(document: dict[str, Any]) -> None:
    """Each system's options model, applied to ``options`` of the connections of that system (if/then)."""
    defs = document.setdefault("$defs", {})
    rules = []
    for system, model in option_models().items():
        schema = model.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
        defs.update(schema.pop("$defs", {}))
        defs[model.__name__] = schema
        rules.append(
            {
                "if": {"properties": {"system": {"const": system}}, "required": ["system"]},
                "then": {"properties": {"options": {"$ref": f"#/$defs/{model.__name__}"}}},
            }
        )
    defs["ConnectionSettings"]["allOf"] = rules
