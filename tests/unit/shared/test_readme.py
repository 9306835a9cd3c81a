from pathlib import Path

from tools.settings_table import table

ROOT = Path(__file__).resolve().parents[3]


def test_readme_settings_table_lists_every_setting():
    readme = (ROOT / "README.md").read_text()
    start, end = readme.index("<!-- settings:start -->"), readme.index("<!-- settings:end -->")
    assert readme[start:end].split("\n", 1)[1].strip() == table().strip(), (
        "README settings table is stale: python tools/settings_table.py"
    )


def test_readme_permission_table_is_the_services_tables():
    from tools.permissions_table import table as permissions

    readme = (ROOT / "README.md").read_text()
    start, end = readme.index("<!-- permissions:start -->"), readme.index("<!-- permissions:end -->")
    assert readme[start:end].split("\n", 1)[1].strip() == permissions().strip(), (
        "README permission table is stale: python tools/permissions_table.py"
    )
