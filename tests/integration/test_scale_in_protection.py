"""Scale-in protection against the embedded endpoint's Auto Scaling: a protected instance
survives a scale-in to zero, and goes with the next one once unprotected."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from handler.local.endpoint import LocalEndpoint
from handler.worker.protection import ScaleInProtection

pytestmark = pytest.mark.integration


def _instances(autoscaling: Any, group: str) -> dict[str, bool]:
    groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    return {
        i["InstanceId"]: i["ProtectedFromScaleIn"]
        for i in groups["AutoScalingGroups"][0]["Instances"]
    }


def test_a_protected_instance_survives_scale_in_until_unprotected(endpoint: LocalEndpoint) -> None:
    # Given a group of two instances
    ec2 = endpoint.client("ec2")
    autoscaling = endpoint.client("autoscaling")
    name = f"pagedrop-fleet-{uuid.uuid4().hex[:8]}"
    image = ec2.describe_images()["Images"][0]["ImageId"]
    ec2.create_launch_template(
        LaunchTemplateName=name,
        LaunchTemplateData={"ImageId": image, "InstanceType": "g6.xlarge"},
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": name, "Version": "$Latest"},
        MinSize=0,
        MaxSize=2,
        DesiredCapacity=2,
        AvailabilityZones=["us-east-1a"],
    )
    busy, idle = sorted(_instances(autoscaling, name))
    guard = ScaleInProtection(autoscaling, name, busy)
    # When the busy one protects itself and the group scales in to zero
    assert guard.protect()
    assert _instances(autoscaling, name) == {busy: True, idle: False}
    autoscaling.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=0)
    # Then only the idle one is gone
    assert _instances(autoscaling, name) == {busy: True}
    # And once unprotected, the next scale-in takes it
    assert guard.unprotect()
    autoscaling.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=0)
    assert _instances(autoscaling, name) == {}
