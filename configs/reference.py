"""Print the config reference as a Markdown table: ``python -m configs.reference``.

The README's config reference is this output; a test keeps the two in step.
"""

from __future__ import annotations

import dataclasses

from dqn_family.configs.config import Config, field_default


def markdown_reference() -> str:
    lines = ["| flag | default | meaning |", "|---|---|---|"]
    for f in dataclasses.fields(Config):
        default = field_default(f)
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool" or isinstance(default, bool):
            flag = f"{flag} / --no-{f.name.replace('_', '-')}"
        if f.name == "env_id":
            flag = "--env, --env-id"
        choices = f.metadata.get("choices")
        meaning = f.metadata["help"] + (f" One of: {', '.join(choices)}." if choices else "")
        lines.append(f"| `{flag}` | `{shown}` | {meaning} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_reference())
