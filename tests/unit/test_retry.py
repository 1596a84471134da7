"""utils.retry: backoff schedule, what is retryable, give-up behaviour and the Lambda deadline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from api.errors import headers_of, status_of
from utils import retry
from utils.errors import ServiceUnavailable
from utils.retry import RetryPolicy, is_retryable


def client_error(code: str, status: int = 400, operation: str = "PutItem") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": f"{code} happened"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


class FakeTime:
    """A monotonic clock that only moves when something sleeps on it."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class Flaky:
    """Fails with the given errors in turn, then returns ``result``; counts its calls."""

    def __init__(self, errors: list[BaseException], result: Any = "ok") -> None:
        self.errors = list(errors)
        self.result = result
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


def always(error_factory: Callable[[], BaseException]) -> Callable[[], Any]:
    def fn() -> Any:
        fn.calls += 1  # type: ignore[attr-defined]
        raise error_factory()

    fn.calls = 0  # type: ignore[attr-defined]
    return fn


def zero() -> float:
    return 0.0


def one() -> float:
    return 1.0


# --- the schedule -----------------------------------------------------------------------------------


def test_delay_schedule_without_jitter_doubles_and_caps() -> None:
    policy = RetryPolicy()
    assert [policy.delay(n, rand=zero) for n in range(7)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]


def test_delay_schedule_with_full_jitter_is_half() -> None:
    policy = RetryPolicy()
    assert [policy.delay(n, rand=one) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_delay_respects_a_custom_policy() -> None:
    policy = RetryPolicy(max_retries=2, base_delay=0.2, max_delay=0.5, jitter=0.0)
    assert [policy.delay(n, rand=one) for n in range(4)] == [0.2, 0.4, 0.5, 0.5]


def test_delay_with_real_randomness_stays_in_the_jitter_band() -> None:
    policy = RetryPolicy()
    for n in range(5):
        nominal = min(8.0, 2.0**n)
        for _ in range(50):
            assert nominal * 0.5 <= policy.delay(n) <= nominal


def test_default_policy() -> None:
    policy = retry.DEFAULT_POLICY
    assert policy == RetryPolicy(max_retries=4, base_delay=1.0, max_delay=8.0, jitter=0.5)


# --- what is retryable ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(client_error("ThrottlingException"), id="ThrottlingException"),
        pytest.param(client_error("ProvisionedThroughputExceededException"), id="ProvisionedThroughputExceeded"),
        pytest.param(client_error("SlowDown", 503), id="SlowDown"),
        pytest.param(client_error("SlowDown", 400), id="SlowDown-any-status"),
        pytest.param(client_error("InternalServerError", 500), id="InternalServerError"),
        pytest.param(client_error("RequestLimitExceeded"), id="RequestLimitExceeded"),
        pytest.param(client_error("TransactionInProgressException"), id="TransactionInProgress"),
        pytest.param(client_error("SomethingNew", 503), id="unknown-code-503"),
        pytest.param(client_error("SomethingNew", 500), id="unknown-code-500"),
        pytest.param(EndpointConnectionError(endpoint_url="https://dynamodb"), id="EndpointConnectionError"),
        pytest.param(ReadTimeoutError(endpoint_url="https://dynamodb"), id="ReadTimeoutError"),
        pytest.param(ConnectTimeoutError(endpoint_url="https://dynamodb"), id="ConnectTimeoutError"),
        pytest.param(ConnectionClosedError(endpoint_url="https://dynamodb"), id="ConnectionClosedError"),
    ],
)
def test_retryable(error: BaseException) -> None:
    assert is_retryable(error) is True


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(client_error("ConditionalCheckFailedException"), id="ConditionalCheckFailed"),
        pytest.param(client_error("ValidationException"), id="ValidationException"),
        pytest.param(client_error("AccessDenied", 403), id="AccessDenied-403"),
        pytest.param(client_error("AccessDeniedException", 400), id="AccessDeniedException"),
        pytest.param(client_error("ResourceNotFoundException"), id="ResourceNotFound"),
        pytest.param(client_error("NoSuchKey", 404), id="NoSuchKey"),
        pytest.param(client_error("SomethingNew", 499), id="unknown-code-4xx"),
        pytest.param(ClientError({}, "GetItem"), id="client-error-without-details"),
        pytest.param(NoCredentialsError(), id="NoCredentialsError"),
        pytest.param(ValueError("bad"), id="ValueError"),
        pytest.param(KeyError("x"), id="KeyError"),
        pytest.param(ServiceUnavailable(), id="our-own-ServiceUnavailable"),
    ],
)
def test_not_retryable(error: BaseException) -> None:
    assert is_retryable(error) is False


# --- retry.call -------------------------------------------------------------------------------------


def test_success_on_first_try_never_sleeps() -> None:
    time = FakeTime()
    fn = Flaky([])
    assert retry.call("op", fn, sleep=time.sleep, clock=time.clock, rand=zero) == "ok"
    assert fn.calls == 1
    assert time.sleeps == []


@pytest.mark.parametrize(("failures", "sleeps"), [(1, [1.0]), (2, [1.0, 2.0]), (3, [1.0, 2.0, 4.0])])
def test_succeeds_after_n_failures_and_records_the_sleeps(failures: int, sleeps: list[float]) -> None:
    time = FakeTime()
    fn = Flaky([client_error("ThrottlingException")] * failures, result={"Item": 1})
    result = retry.call("dynamodb.get_item", fn, sleep=time.sleep, clock=time.clock, rand=zero)
    assert result == {"Item": 1}
    assert fn.calls == failures + 1
    assert time.sleeps == sleeps


def test_mixed_retryable_errors_are_all_retried() -> None:
    time = FakeTime()
    fn = Flaky(
        [client_error("ThrottlingException"), ReadTimeoutError(endpoint_url="x"), client_error("Oops", 502)],
        result=42,
    )
    assert retry.call("op", fn, sleep=time.sleep, clock=time.clock, rand=one) == 42
    assert time.sleeps == [0.5, 1.0, 2.0]


def test_gives_up_after_max_retries_with_service_unavailable_chained_to_the_last_error() -> None:
    time = FakeTime()
    errors = [client_error("ThrottlingException", operation=f"Call{i}") for i in range(5)]
    fn = Flaky(errors)
    with pytest.raises(ServiceUnavailable) as caught:
        retry.call("dynamodb.put_item", fn, sleep=time.sleep, clock=time.clock, rand=zero)
    assert fn.calls == 5  # one attempt plus four retries
    assert time.sleeps == [1.0, 2.0, 4.0, 8.0]
    error = caught.value
    assert status_of(error) == 503
    assert error.code == "SERVICE_UNAVAILABLE"
    assert headers_of(error)["Retry-After"] == "4"
    assert int(headers_of(error)["Retry-After"]) >= 1
    assert isinstance(error.__cause__, ClientError)
    assert error.__cause__.operation_name == "Call4"  # the last error, not the first
    # Nothing of the AWS error leaks into what the client sees.
    assert "Throttling" not in error.message


def test_custom_policy_max_retries_and_retry_after() -> None:
    time = FakeTime()
    fn = always(lambda: client_error("InternalServerError", 500))
    policy = RetryPolicy(max_retries=1, base_delay=0.2, max_delay=0.2)
    with pytest.raises(ServiceUnavailable) as caught:
        retry.call("ssm.get_parameters_by_path", fn, policy=policy, sleep=time.sleep, clock=time.clock, rand=zero)
    assert fn.calls == 2  # type: ignore[attr-defined]
    assert time.sleeps == [0.2]
    assert headers_of(caught.value)["Retry-After"] == "1"


def test_zero_retries_gives_up_at_once() -> None:
    time = FakeTime()
    fn = always(lambda: client_error("SlowDown", 503))
    with pytest.raises(ServiceUnavailable):
        retry.call("s3.put_object", fn, policy=RetryPolicy(max_retries=0), sleep=time.sleep, clock=time.clock)
    assert fn.calls == 1  # type: ignore[attr-defined]
    assert time.sleeps == []


@pytest.mark.parametrize(
    "error",
    [client_error("ConditionalCheckFailedException"), client_error("AccessDenied", 403), ValueError("bad")],
    ids=["conditional", "access-denied", "value-error"],
)
def test_non_retryable_errors_propagate_immediately(error: BaseException) -> None:
    time = FakeTime()
    fn = Flaky([error])
    with pytest.raises(type(error)) as caught:
        retry.call("op", fn, sleep=time.sleep, clock=time.clock, rand=zero)
    assert caught.value is error
    assert fn.calls == 1
    assert time.sleeps == []


def test_non_retryable_error_after_retryable_ones_propagates_unchanged() -> None:
    time = FakeTime()
    conditional = client_error("ConditionalCheckFailedException")
    fn = Flaky([client_error("ThrottlingException"), conditional])
    with pytest.raises(ClientError) as caught:
        retry.call("op", fn, sleep=time.sleep, clock=time.clock, rand=zero)
    assert caught.value is conditional
    assert time.sleeps == [1.0]


# --- the deadline -----------------------------------------------------------------------------------


def test_seconds_left_is_none_outside_a_deadline() -> None:
    assert retry.seconds_left() is None
    time = FakeTime()
    assert retry.seconds_left(time.clock) is None


def test_seconds_left_counts_down_and_is_reset_after_the_block() -> None:
    time = FakeTime()
    with retry.deadline(10.0, clock=time.clock):
        assert retry.seconds_left(time.clock) == 10.0
        time.sleep(2.5)
        assert retry.seconds_left(time.clock) == 7.5
        with retry.deadline(1.0, clock=time.clock):
            assert retry.seconds_left(time.clock) == 1.0
        assert retry.seconds_left(time.clock) == 7.5
    assert retry.seconds_left(time.clock) is None


def test_deadline_none_means_unbounded() -> None:
    with retry.deadline(None):
        assert retry.seconds_left() is None


def test_with_three_seconds_left_only_the_first_one_second_retry_happens() -> None:
    time = FakeTime()
    fn = always(lambda: client_error("ThrottlingException"))
    with retry.deadline(3.0, clock=time.clock), pytest.raises(ServiceUnavailable) as caught:
        retry.call("dynamodb.query", fn, sleep=time.sleep, clock=time.clock, rand=zero)
    assert time.sleeps == [1.0]
    assert fn.calls == 2  # type: ignore[attr-defined]
    assert isinstance(caught.value.__cause__, ClientError)


def test_no_time_left_means_no_retry() -> None:
    time = FakeTime()
    fn = always(lambda: client_error("ThrottlingException"))
    with retry.deadline(0.5, clock=time.clock), pytest.raises(ServiceUnavailable):
        retry.call("op", fn, sleep=time.sleep, clock=time.clock, rand=zero)
    assert time.sleeps == []
    assert fn.calls == 1  # type: ignore[attr-defined]


def test_deadline_still_allows_a_retry_that_fits() -> None:
    time = FakeTime()
    fn = Flaky([client_error("ThrottlingException")] * 2)
    with retry.deadline(5.0, clock=time.clock):
        assert retry.call("op", fn, sleep=time.sleep, clock=time.clock, rand=zero) == "ok"
    assert time.sleeps == [1.0, 2.0]


@pytest.mark.parametrize("budget", [0.0, 1.0, 1.9, 2.0, 2.5, 3.0, 4.0, 7.0, 10.0, 16.0, 30.0])
@pytest.mark.parametrize("rand", [zero, one], ids=["no-jitter", "full-jitter"])
def test_never_sleeps_past_the_deadline(budget: float, rand: Callable[[], float]) -> None:
    time = FakeTime()
    start = time.now
    fn = always(lambda: client_error("ThrottlingException"))
    with retry.deadline(budget, clock=time.clock), pytest.raises(ServiceUnavailable):
        retry.call("op", fn, sleep=time.sleep, clock=time.clock, rand=rand)
    # Every sleep leaves at least one attempt's allowance before the deadline.
    assert time.now - start <= max(0.0, budget - retry.ATTEMPT_ALLOWANCE_SECONDS)
    assert len(time.sleeps) <= retry.DEFAULT_POLICY.max_retries


def test_time_spent_in_the_call_counts_against_the_deadline() -> None:
    time = FakeTime()

    def slow_failure() -> None:
        time.now += 2.0  # the attempt itself took 2 s
        raise client_error("ThrottlingException")

    with retry.deadline(4.5, clock=time.clock), pytest.raises(ServiceUnavailable):
        retry.call("op", slow_failure, sleep=time.sleep, clock=time.clock, rand=zero)
    # 2 s attempt, 1 s sleep (2.5 s were left), 2 s attempt: -0.5 s left, no second sleep.
    assert time.sleeps == [1.0]
