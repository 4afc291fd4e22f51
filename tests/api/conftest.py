import pytest

import interactive_trt


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """One width-reduced VGG-19 export that every API test reads (none writes beside it)."""
    out = tmp_path_factory.mktemp("api-model")
    return interactive_trt.export("vgg19", "random", out=out, width_divisor=8, verify=False)
