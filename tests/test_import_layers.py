"""The package's imports point down and form no circle (lazy imports inside functions
included: they hide a circle from Python, not from the reader)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / 'fq_det'

# Low to high: a module may import its own package or a lower layer only.
LAYERS = (('version', 'compat'), ('utils', ), ('models', ), ('datasets', ), ('classification', ),
          ('engine', ), ('analysis', ), ('evaluation', ), ('visualization', ), ('studies', ),
          ('cli', ))
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob('*.py'))}


def _resolve(target: str, names: list[str], modules: dict) -> list[str]:
    """The modules an ``import``/``from ... import names`` statement loads (submodules
    named in ``names`` count as themselves; the implicit parent-package imports do not)."""
    subs = [f'{target}.{n}' for n in names if f'{target}.{n}' in modules]
    if subs and len(subs) == len(names):
        return subs
    while target not in modules and '.' in target:
        target = target.rsplit('.', 1)[0]
    return [target] + subs if target in modules else subs


def import_graph() -> dict[str, set[str]]:
    """``{module: fq_det modules it imports}`` over every import statement in the file."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == '__init__.py' else name.rsplit('.', 1)[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split('.')[:len(package.split('.')) - node.level + 1]
                    target = '.'.join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ''
                if target.split('.')[0] == 'fq_det':
                    edges.update(_resolve(target, [a.name for a in node.names], modules))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split('.')[0] == 'fq_det':
                        edges.update(_resolve(alias.name, [], modules))
        graph[name] = edges - {name}
    return graph


def _layer(module: str) -> str | None:
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else None


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for src, targets in graph.items():
        low = _layer(src)
        if low is None:  # fq_det/__init__.py registers everything
            continue
        for dst in targets:
            high = _layer(dst)
            if high is not None and high != low and RANK[high] > RANK[low]:
                found.append(f'{src} -> {dst}')
    return sorted(found)


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles


def test_every_subpackage_has_a_layer():
    subpackages = {_layer(m) for m in _modules()} - {None}
    assert subpackages <= set(RANK), f'no layer for {sorted(subpackages - set(RANK))}'


def test_imports_point_down():
    assert upward_imports(import_graph()) == []


def test_models_and_datasets_never_import_each_other():
    graph = import_graph()
    crossing = sorted(f'{src} -> {dst}' for src, targets in graph.items() for dst in targets
                      if {_layer(src), _layer(dst)} == {'models', 'datasets'})
    assert crossing == []


def test_no_import_circle():
    assert import_circles(import_graph()) == []


def test_the_checks_find_what_they_look_for():
    graph = {'fq_det.models.a': {'fq_det.evaluation.b'}, 'fq_det.evaluation.b': {'fq_det.evaluation.c'},
             'fq_det.evaluation.c': {'fq_det.evaluation.b'}}
    assert upward_imports(graph) == ['fq_det.models.a -> fq_det.evaluation.b']
    assert import_circles(graph) == [['fq_det.evaluation.b', 'fq_det.evaluation.c']]


@pytest.mark.parametrize('source, expected', [
    ('from fq_det.utils.io import read_json', {'fq_det.utils.io'}),
    ('from ..utils import io', {'fq_det.utils.io'}),
    ('def f():\n    from fq_det.models import quantizers', {'fq_det.models.quantizers'}),
])
def test_lazy_and_relative_imports_count(tmp_path, monkeypatch, source, expected):
    pkg = tmp_path / 'fq_det'
    for sub in ('utils', 'models', 'models/quantizers', 'engine'):
        (pkg / sub).mkdir(parents=True, exist_ok=True)
        (pkg / sub / '__init__.py').write_text('')
    (pkg / '__init__.py').write_text('')
    (pkg / 'utils' / 'io.py').write_text('')
    (pkg / 'engine' / 'runs.py').write_text(source)
    monkeypatch.setitem(globals(), 'ROOT', pkg)
    assert import_graph()['fq_det.engine.runs'] == expected
