"""The README stays true: its config reference is the one the code generates."""

from pathlib import Path

from dqn_family.configs.reference import markdown_reference

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_config_reference_matches_config_fields():
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- config-reference:start")
    body = text[text.index("\n", start) + 1 : text.index("<!-- config-reference:end -->")]
    assert body.strip() == markdown_reference().strip(), "run `python -m configs.reference` and paste it into README.md"


def test_readme_setup_commands_match_ci():
    text = README.read_text(encoding="utf-8")
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    checks = "ruff check . && ruff format --check . && python -m mypy && python -m pytest -q"
    assert f'pip install "torch==2.13.0" -e ".[dev]" && {checks}' in text
    assert '"torch==2.13.0" -e ".[dev]"' in ci and checks in ci
