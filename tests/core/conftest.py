import pytest
from testkit.core_rig import make_core


@pytest.fixture
def core(tmp_path):
    core = make_core(tmp_path / "agent.db")
    core.outputs.start()
    yield core
    core.outputs.stop()
    core.store.close()
