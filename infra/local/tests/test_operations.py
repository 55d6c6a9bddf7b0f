"""template.yaml's operations stay in step with the rest of it: every dead-letter queue and every function has its
alarm, every alarm tells the AlarmTopic and names its section of the runbook (docs/operations/runbook.md), the ResMan-sync and poller
alarms watch what the functions emit, and the dashboard is valid JSON showing only metrics that the functions emit.

The functions' metrics (CloudWatch Embedded Metric Format, namespace METRICS_NAMESPACE, dimension Stack) are the
names below; a metric the template reads under another name would be a graph or an alarm that never gets data."""

from __future__ import annotations

import json
import re

import pytest

from cfn_template import load_template
from conftest import REPO_ROOT
from provision import dead_letter_target

TEMPLATE = REPO_ROOT / "template.yaml"
RUNBOOK = REPO_ROOT / "docs" / "operations" / "runbook.md"
ALARM = "AWS::CloudWatch::Alarm"
TOPIC = "AlarmTopic"

# What the functions emit, each with the dimension set [Stack]; ResManErrors also with [Stack, ErrorClass].
EMITTED_METRICS = {
    "BookingsAccepted",
    "BookingsPending",
    "BookingsFailed",
    "SlotTakenRefusals",
    "ResManLatency",
    "ResManErrors",
    "MessagesSent",
    "MessagesFailed",
    "TextsSent",
    "TextsDelivered",
    "TextsFailed",
    "WebhookRefusals",
    "PollerLagSeconds",
    "PollerRuns",
    "OldestPendingSyncSeconds",
    "ConflictsSettled",
    "Disagreements",
    "AccessRefusals",
    "HoldLimitRefusals",
}
ERROR_CLASSES = {"rejected", "unreachable", "timeout", "server", "malformed"}
RUNBOOK_REFERENCE = re.compile(r"see docs/operations/runbook\.md \(([a-z0-9-]+)\)$")
PLACEHOLDER = re.compile(r"\$\{([^}!][^}]*)\}")


@pytest.fixture(scope="module")
def template():
    return load_template(TEMPLATE)


@pytest.fixture(scope="module")
def alarms(template) -> dict[str, dict]:
    return {logical_id: resource["Properties"] for logical_id, resource in template.resources_of_type(ALARM)}


def queues_with_redrive() -> list[str]:
    return [
        logical_id
        for logical_id, resource in load_template(TEMPLATE).resources_of_type("AWS::SQS::Queue")
        if (resource.get("Properties") or {}).get("RedrivePolicy")
    ]


def dead_letter_queues() -> list[str]:
    resources = load_template(TEMPLATE).resources
    return sorted({dead_letter_target(resources[queue]) for queue in queues_with_redrive()} - {None})


def function_ids() -> list[str]:
    return [function.logical_id for function in load_template(TEMPLATE).functions()]


def alarm_ids() -> list[str]:
    return [logical_id for logical_id, _ in load_template(TEMPLATE).resources_of_type(ALARM)]


def metrics_namespace(template) -> str:
    variables = template.document["Globals"]["Function"]["Environment"]["Variables"]
    return variables["METRICS_NAMESPACE"]


def dimension(properties: dict, name: str):
    values = [d["Value"] for d in properties.get("Dimensions") or [] if d["Name"] == name]
    return values[0] if len(values) == 1 else None


def metric_alarms(alarms: dict, namespace: str, metric: str) -> dict[str, dict]:
    return {
        logical_id: properties
        for logical_id, properties in alarms.items()
        if properties.get("Namespace") == namespace and properties.get("MetricName") == metric
    }


def custom_metrics_of(properties: dict, namespace: str) -> list[tuple[str, dict]]:
    """(metric name, dimensions as a dict) of every metric of `namespace` an alarm reads, alone or in metric math."""
    found = []
    if properties.get("Namespace") == namespace:
        found.append((properties["MetricName"], {d["Name"]: d["Value"] for d in properties.get("Dimensions") or []}))
    for query in properties.get("Metrics") or []:
        metric = (query.get("MetricStat") or {}).get("Metric") or {}
        if metric.get("Namespace") == namespace:
            found.append((metric["MetricName"], {d["Name"]: d["Value"] for d in metric.get("Dimensions") or []}))
    return found


def runbook_anchors() -> set[str]:
    """GitHub's anchors of the headings of the runbook (docs/operations/runbook.md)."""
    anchors = set()
    for line in RUNBOOK.read_text().splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^a-z0-9 -]", "", heading).replace(" ", "-"))
    return anchors


# --- Dead-letter queues --------------------------------------------------------------------------------------------


def test_the_template_has_dead_letter_queues_and_functions_to_check():
    assert dead_letter_queues() and function_ids(), "the template has no dead-letter queue or function to check"


@pytest.mark.parametrize("queue", queues_with_redrive())
def test_every_redrive_policy_names_a_queue_of_the_template(template, queue):
    target = dead_letter_target(template.resources[queue])
    assert target in template.resources, (
        f"{queue}'s RedrivePolicy does not name its dead-letter queue as !GetAtt <Queue>.Arn, so no alarm can be "
        "checked for it"
    )


@pytest.mark.parametrize("queue", dead_letter_queues())
def test_every_dead_letter_queue_has_an_alarm_on_any_message_waiting(alarms, queue):
    on_queue = {
        logical_id: properties
        for logical_id, properties in metric_alarms(alarms, "AWS/SQS", "ApproximateNumberOfMessagesVisible").items()
        if dimension(properties, "QueueName") == {"Fn::GetAtt": [queue, "QueueName"]}
    }
    assert on_queue, f"no alarm watches the depth of the dead-letter queue {queue}"
    for logical_id, properties in on_queue.items():
        assert (properties["Statistic"], properties["Period"], properties["EvaluationPeriods"]) == ("Maximum", 60, 1)
        assert properties["Threshold"] == 0 and properties["ComparisonOperator"] == "GreaterThanThreshold", (
            f"{logical_id} must fire on the first message in {queue}"
        )


# --- Functions -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("function", function_ids())
def test_every_function_has_an_errors_alarm(alarms, function):
    on_function = {
        logical_id: properties
        for logical_id, properties in metric_alarms(alarms, "AWS/Lambda", "Errors").items()
        if dimension(properties, "FunctionName") == {"Ref": function}
    }
    assert on_function, f"no alarm watches the Lambda errors of {function}"
    for logical_id, properties in on_function.items():
        assert (properties["Statistic"], properties["Period"], properties["EvaluationPeriods"]) == ("Sum", 300, 1)
        assert properties["Threshold"] == 0 and properties["ComparisonOperator"] == "GreaterThanThreshold", logical_id


# --- Every alarm ---------------------------------------------------------------------------------------------------


def test_the_alarm_topic_exists_and_an_email_subscribes_only_when_given(template):
    assert template.resources[TOPIC]["Type"] == "AWS::SNS::Topic"
    subscriptions = template.resources_of_type("AWS::SNS::Subscription")
    assert subscriptions, "no subscription for AlarmEmail"
    for _, subscription in subscriptions:
        assert subscription["Properties"]["TopicArn"] == {"Ref": TOPIC}
        condition = template.document["Conditions"][subscription["Condition"]]
        assert condition == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    assert template.parameters["AlarmEmail"]["Default"] == ""
    assert template.document["Outputs"]["AlarmTopicArn"]["Value"] == {"Ref": TOPIC}


@pytest.mark.parametrize("alarm", alarm_ids())
def test_every_alarm_tells_the_topic_when_it_fires_and_when_it_clears(alarms, alarm):
    assert alarms[alarm].get("AlarmActions") == [{"Ref": TOPIC}], f"{alarm} does not notify {TOPIC}"
    assert alarms[alarm].get("OKActions") == [{"Ref": TOPIC}], f"{alarm} does not say {TOPIC} when it clears"


@pytest.mark.parametrize("alarm", alarm_ids())
def test_every_alarm_names_its_runbook_section_and_chooses_its_missing_data(alarms, alarm):
    properties = alarms[alarm]
    reference = RUNBOOK_REFERENCE.search(properties.get("AlarmDescription", "").strip())
    assert reference, f"{alarm}'s AlarmDescription should end \"see docs/operations/runbook.md (<anchor>)\""
    assert reference.group(1) in runbook_anchors(), (
        f"{alarm} points at the runbook section '{reference.group(1)}', which docs/operations/runbook.md does not have"
    )
    assert properties.get("TreatMissingData") in ("breaching", "notBreaching", "ignore", "missing"), (
        f"{alarm} leaves TreatMissingData to the default; choose it"
    )


@pytest.mark.parametrize("alarm", alarm_ids())
def test_every_alarm_on_our_own_metrics_reads_a_metric_the_functions_emit(template, alarms, alarm):
    for metric, dimensions in custom_metrics_of(alarms[alarm], metrics_namespace(template)):
        assert metric in EMITTED_METRICS, f"{alarm} reads {metric}, which no function emits"
        assert dimensions.get("Stack") == {"Ref": "AWS::StackName"}, f"{alarm} must read its own stack's {metric}"
        assert set(dimensions) <= {"Stack", "ErrorClass"}
        if "ErrorClass" in dimensions:
            assert metric == "ResManErrors" and dimensions["ErrorClass"] in ERROR_CLASSES


def test_the_functions_are_told_the_metrics_namespace_and_their_stack(template):
    variables = template.document["Globals"]["Function"]["Environment"]["Variables"]
    assert variables.get("METRICS_NAMESPACE") == "TourBooking"
    assert variables.get("STACK_NAME") == {"Ref": "AWS::StackName"}


def single_alarm(template, alarms, metric: str) -> dict:
    found = metric_alarms(alarms, metrics_namespace(template), metric)
    assert len(found) == 1, f"expected one alarm on {metric}, found {sorted(found) or 'none'}"
    properties = next(iter(found.values()))
    assert dimension(properties, "Stack") == {"Ref": "AWS::StackName"}
    return properties


def test_a_resman_write_owed_for_over_15_minutes_alarms(template, alarms):
    properties = single_alarm(template, alarms, "OldestPendingSyncSeconds")
    assert (properties["Statistic"], properties["Period"], properties["EvaluationPeriods"]) == ("Maximum", 300, 1)
    assert (properties["Threshold"], properties["ComparisonOperator"]) == (900, "GreaterThanThreshold")


def test_a_poller_that_has_not_run_for_5_minutes_alarms_and_silence_counts_as_not_running(template, alarms):
    properties = single_alarm(template, alarms, "PollerRuns")
    assert (properties["Statistic"], properties["Period"], properties["EvaluationPeriods"]) == ("Sum", 300, 1)
    assert (properties["Threshold"], properties["ComparisonOperator"]) == (1, "LessThanThreshold")
    assert properties["TreatMissingData"] == "breaching"


# --- The dashboard -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard(template) -> tuple[str, dict]:
    """The dashboard body as written, and parsed as JSON with each ${Name} replaced by the dummy string <Name>."""
    dashboards = template.resources_of_type("AWS::CloudWatch::Dashboard")
    assert len(dashboards) == 1, "expected one dashboard"
    body = dashboards[0][1]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert isinstance(body, str), "DashboardBody should be !Sub of one JSON text"
    try:
        parsed = json.loads(PLACEHOLDER.sub(lambda match: f"<{match.group(1)}>", body))
    except json.JSONDecodeError as error:
        pytest.fail(f"the dashboard body is not valid JSON: {error}")
    return body, parsed


def dashboard_metrics(parsed: dict) -> list[list]:
    metrics = []
    for widget in parsed["widgets"]:
        for metric in (widget.get("properties") or {}).get("metrics") or []:
            assert metric[0] not in (".", "..."), "write the dashboard's metrics out in full (no '...' shorthand)"
            metrics.append([item for item in metric if not isinstance(item, dict)])
    return metrics


def test_the_dashboard_placeholders_name_resources_or_pseudo_parameters(template, dashboard):
    body, _ = dashboard
    for name in PLACEHOLDER.findall(body):
        assert name.startswith("AWS::") or name.split(".", 1)[0] in template.resources, (
            f"the dashboard's ${{{name}}} names nothing in the template"
        )


def test_the_dashboard_shows_only_and_every_metric_the_functions_emit(template, dashboard):
    _, parsed = dashboard
    shown = [metric for metric in dashboard_metrics(parsed) if metric[0] == metrics_namespace(template)]
    names = {metric[1] for metric in shown}
    assert names <= EMITTED_METRICS, f"the dashboard shows metrics no function emits: {sorted(names - EMITTED_METRICS)}"
    assert names == EMITTED_METRICS, f"the dashboard leaves out {sorted(EMITTED_METRICS - names)}"
    for metric in shown:
        dimensions = dict(zip(metric[2::2], metric[3::2]))
        assert dimensions.get("Stack") == "<AWS::StackName>", f"{metric[1]} on the dashboard is not this stack's"
        if "ErrorClass" in dimensions:
            assert dimensions["ErrorClass"] in ERROR_CLASSES


def test_the_dashboard_shows_every_dead_letter_queue_and_every_functions_errors_and_throttles(dashboard):
    _, parsed = dashboard
    metrics = dashboard_metrics(parsed)
    for queue in dead_letter_queues():
        assert ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", f"<{queue}.QueueName>"] in metrics, (
            f"the dashboard does not show the depth of {queue}"
        )
    for function in function_ids():
        for metric in ("Errors", "Throttles"):
            assert ["AWS/Lambda", metric, "FunctionName", f"<{function}>"] in metrics, (
                f"the dashboard does not show the {metric} of {function}"
            )


def test_the_dashboard_shows_the_state_of_every_alarm(dashboard):
    _, parsed = dashboard
    shown = {arn for widget in parsed["widgets"] if widget["type"] == "alarm" for arn in widget["properties"]["alarms"]}
    missing = sorted(alarm for alarm in alarm_ids() if f"<{alarm}.Arn>" not in shown)
    assert not missing, f"the dashboard's alarm widget leaves out {missing}"


def test_the_dashboard_url_is_an_output(template):
    assert "OperationsDashboard" in template.document["Outputs"]["OperationsDashboardUrl"]["Value"]["Fn::Sub"]


def test_the_unauthenticated_webhook_has_a_reserved_concurrency_that_leaves_the_booking_path_its_share(template):
    webhook = template.resources["TourWebhookFunction"]["Properties"]
    assert webhook["FunctionUrlConfig"]["AuthType"] == "NONE"
    assert webhook["ReservedConcurrentExecutions"] == {"Ref": "WebhookReservedConcurrency"}
    parameter = template.parameters["WebhookReservedConcurrency"]
    # An account starts with 1,000 concurrent executions; the webhook takes at most a small part of them.
    assert 1 <= parameter["MinValue"] <= parameter["Default"] <= 50


def test_email_may_be_sent_only_from_the_configured_senders_domain_and_configuration_set(template):
    granted = []
    for function in template.functions():
        for policy in function.properties.get("Policies") or []:
            for statement in (policy.get("Statement") or []) if isinstance(policy, dict) else []:
                actions = statement.get("Action") or []
                actions = [actions] if isinstance(actions, str) else actions
                if any(a.startswith("ses:") for a in actions):
                    granted.append((function.logical_id, actions, json.dumps(statement.get("Resource"))))
    # The sender (every tour's messages) and the scheduler (each property's weekly digest), nothing else.
    assert sorted((f, a) for f, a, _ in granted) == [
        ("NotificationSenderFunction", ["ses:SendEmail"]), ("TourReminderSchedulerFunction", ["ses:SendEmail"]),
    ]
    for _, _, resources in granted:
        assert "identity/${SenderDomain}" in resources and "configuration-set/${EmailConfigurationSet}" in resources
        assert "identity/*" not in resources and '"*"' not in resources
