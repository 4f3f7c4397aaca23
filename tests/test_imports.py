"""apallm._imports.resolve: the one way an import path ``package.module:attribute`` becomes an object."""

import pytest

from apallm._imports import resolve
from apallm.calibration import LogisticCalibrator
from apallm.detectors import load_detector
from apallm.training.rewards import resolve_reward


def test_resolve_finds_module_attributes_and_dotted_ones():
    assert resolve("apallm.calibration:LogisticCalibrator") is LogisticCalibrator
    assert resolve("apallm.calibration:LogisticCalibrator.fit").__func__ is LogisticCalibrator.fit.__func__


@pytest.mark.parametrize("spec", ["apallm.calibration", "apallm.calibration:", ":LogisticCalibrator", ""])
def test_resolve_refuses_what_is_not_an_import_path(spec):
    with pytest.raises(ValueError, match="not an import path of the form 'package.module:attribute'"):
        resolve(spec)


def test_resolve_names_the_spec_and_what_is_missing():
    with pytest.raises(ImportError, match=r"cannot resolve 'apallm\.no_such_module:x': importing "
                                          r"'apallm\.no_such_module' failed \(No module named") as err:
        resolve("apallm.no_such_module:x")
    assert isinstance(err.value.__cause__, ModuleNotFoundError)
    with pytest.raises(ImportError, match=r"'apallm\.calibration' has no attribute 'LogisticHead'"):
        resolve("apallm.calibration:LogisticHead")


def test_every_user_of_import_paths_reports_through_resolve():
    with pytest.raises(ImportError, match="has no attribute 'nothing'"):
        load_detector("apallm.detectors:nothing")
    with pytest.raises(ValueError, match="reward 'apallm.training.rewards:nothing' cannot be imported: .*no attribute"):
        resolve_reward("apallm.training.rewards:nothing")
    with pytest.raises(ValueError, match="unknown reward 'fluency'"):
        resolve_reward("fluency")
