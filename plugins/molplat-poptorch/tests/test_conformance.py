"""molplat-poptorch passes the molplat-sdk conformance suite, on the PopTorch test double."""
import pytest
from molplat_sdk import PluginConformance


@pytest.fixture(autouse=True)
def _double(poptorch_double):
    """The suite builds and fits the backend; poptorch cannot be installed here, so the double stands in."""
    yield


class TestPopTorchConformance(PluginConformance):
    plugin = "molplat-poptorch"
    settings = {"poptorch": {"max_epochs": 2, "batch_size": 4, "num_threads": 1}}
