"""The house rules of issue 17, checked on the exported code: layers (nothing imports upward), no module imports
another's private name, no module over 700 lines, no notebook export cell over 80 lines."""
import ast
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "pseudicom"

# Each module's floor; a module may import from its own floor or below, never above (ARCHITECTURE.md, "Layering").
LAYERS = [
    {"errors", "_dcmbytes", "_dcmvalues", "_ostune", "fonts", "spellings", "profile"},
    {"io", "rawheader", "recipe", "keys", "scrub", "identifying"},
    {"deid", "pixels", "pixel_codecs", "detect", "deface", "deface_geometry", "deface_template", "synth", "synth_pixels",
     "synth_head"},
    {"inventory", "pipeline", "verify", "_verify_needles", "_verify_search", "_verify_report", "record", "nbcheck"},
    {"serve", "receiver", "forward", "pull", "demo"},
    {"widgets", "cli", "__init__"},
]
FLOOR = {name: i for i, names in enumerate(LAYERS) for name in names}


def _modules():
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).with_suffix("")
        if rel.name == "_modidx":
            continue
        yield ".".join(rel.parts), path


def _top(dotted: str) -> str:
    "The layer name of a module: its first part (`pipeline.worker` -> `pipeline`)."
    return dotted.split(".")[0]


def _imports(dotted: str, path: Path):
    "(imported module, imported names) for every `from pseudicom... import` and relative import, at any depth."
    package = dotted.split(".")[:-1] if path.name != "__init__.py" else dotted.split(".")
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and node.module.split(".")[0] == "pseudicom":
                target = ".".join(node.module.split(".")[1:])
            else:
                continue
            yield target or "__init__", [a.name for a in node.names]


def test_every_module_has_a_floor():
    missing = {_top(d) for d, _ in _modules()} - set(FLOOR) - {"static"}
    assert not missing, f"modules without a layer in this test (add them to LAYERS): {sorted(missing)}"


def test_nothing_imports_upward():
    bad = []
    for dotted, path in _modules():
        for target, names in _imports(dotted, path):
            for name in names:   # `from . import pixels` names a module
                mod = target if target != "__init__" or name not in FLOOR else name
                if _top(mod) in FLOOR and FLOOR[_top(mod)] > FLOOR[_top(dotted)] and not (
                        _top(dotted) == "__init__"):
                    bad.append(f"{dotted} -> {mod}")
    assert not bad, "imports from a higher floor:\n" + "\n".join(sorted(set(bad)))


def test_no_module_imports_another_modules_private_name():
    bad = []
    for dotted, path in _modules():
        for target, names in _imports(dotted, path):
            for name in names:
                is_module = (PKG / target.replace(".", "/") / f"{name}.py").exists() or (PKG / f"{name}.py").exists()
                if name.startswith("_") and name != "__version__" and not is_module and target != dotted:
                    bad.append(f"{dotted}: {name} from {target}")
    assert not bad, "private names imported from another module:\n" + "\n".join(bad)


def test_no_module_over_700_lines():
    sizes = {d: len(p.read_text().splitlines()) for d, p in _modules()}
    assert max(sizes.values()) <= 700, {d: n for d, n in sizes.items() if n > 700}


def test_no_export_cell_over_80_lines():
    long = []
    for nb in sorted((ROOT / "nbs").glob("*.ipynb")):
        for cell in json.loads(nb.read_text())["cells"]:
            src = "".join(cell["source"])
            if cell["cell_type"] == "code" and src.lstrip().startswith(("#| export", "#|export", "#| exporti")):
                if src.count("\n") + 1 > 80:
                    long.append(f"{nb.name}: {src.splitlines()[1][:60]} ({src.count(chr(10)) + 1} lines)")
    assert not long, "export cells over 80 lines:\n" + "\n".join(long)
