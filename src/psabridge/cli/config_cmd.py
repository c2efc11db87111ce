"""`psabridge config check|schema`: validate the settings file; print its JSON Schema for editors."""

from __future__ import annotations

import json
from typing import Any

import typer

from psabridge.cli.common import ConfigOption, load
from psabridge.connectors.options import option_models
from psabridge.settings import Settings

app = typer.Typer(help="Validate the configuration, or print its JSON Schema.", no_args_is_help=True)


@app.command("check")
def check(config: ConfigOption = None) -> None:
    """Validate the settings file and the secrets it names; exit non-zero on any problem."""
    settings = load(config, quiet_logging=True)
    typer.echo(
        f"ok: {settings.source}: {len(settings.connections)} connection(s), {len(settings.links)} link(s), "
        f"database {settings.database.split('://', 1)[0]}, broker {settings.broker.split('://', 1)[0]}"
    )


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of the settings file (point your editor's YAML plugin at it)."""
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
