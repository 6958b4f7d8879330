import pytest

from support import FIXTURE_CASES


@pytest.fixture(params=list(FIXTURE_CASES))
def fixture_variant(request):
    return request.param
