"""The (spec, test shape, dtype) cases every kernel test file checks with `check()`."""

from __future__ import annotations

import pytest


def spec_cases(*specs) -> list:
    """One pytest param per SPEC, test shape and dtype, named `name-dims-dtype`."""
    return [
        pytest.param(spec, shape, dtype, id=f"{spec.name}-{'x'.join(map(str, shape.dims))}-{str(dtype)[6:]}")
        for spec in specs
        for shape in spec.test_shapes
        for dtype in spec.dtypes
    ]


def shape_cases(spec) -> list:
    """One pytest param per test shape and dtype of one SPEC, named `dims-dtype`."""
    return [
        pytest.param(shape, dtype, id=f"{'x'.join(map(str, shape.dims))}-{str(dtype)[6:]}")
        for shape in spec.test_shapes
        for dtype in spec.dtypes
    ]
