"""Scale-in protection: an instance converting a document is not the one a scale-in removes.

The fleet scales on the queue's backlog, down to zero. A scale-in terminates instances the
Auto Scaling group picks; a worker holding a document protects its instance
(``SetInstanceProtection``) while it works and lifts the protection once idle, so the group
removes idle instances and waits for busy ones. Protection does not stop a Spot interruption,
a failed health check's replacement or a manual termination: those end in SIGTERM, which the
worker answers by handing its messages back (handler/worker/loop.py).

Off EC2, or without ``PAGEDROP_ASG_NAME``, there is nothing to protect:
:func:`from_settings` returns None.
"""

from __future__ import annotations

import http.client
import logging
import re
import threading
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from handler.aws import Clients
    from handler.settings import Settings

log = logging.getLogger(__name__)

IMDS_URL = "http://169.254.169.254"
IMDS_TOKEN_TTL_S = 300  # the token is used once, right away
IMDS_TIMEOUT_S = 1.0  # per request; off EC2 the address does not answer
_INSTANCE_ID = re.compile(r"i-[0-9a-f]{8,17}")


class ScaleInProtection:
    """Protects this instance from scale-in while it works; best effort.

    ``protect()`` and ``unprotect()`` are idempotent: a call that would not change the state
    last set makes no request. A failed request (throttled, access denied, the instance
    already leaving the group) is logged as a warning and never fails a document; the state
    is then unknown, so the next call tries again. The consequence of a failure: while
    unprotected, a scale-in may terminate the instance mid-document; the worker gets SIGTERM,
    hands the message back, and another worker resumes from the checkpointed pages, so the
    cost is time, not the document. A failed ``unprotect()`` leaves an idle instance that
    scale-in skips (it costs money until the next idle poll lifts the protection).
    """

    def __init__(self, autoscaling: Any, asg_name: str, instance_id: str) -> None:
        self._autoscaling = autoscaling
        self.asg_name = asg_name
        self.instance_id = instance_id
        self._protected: bool | None = None  # None: unknown (not set yet, or a call failed)
        self._lock = threading.Lock()
        self._owners: set[str] = set()  # worker slots holding work (handler/worker/slots.py)
        self._owners_lock = threading.Lock()

    @property
    def protected(self) -> bool | None:
        return self._protected

    def protect(self) -> bool:
        """Keep scale-in away from this instance; returns whether it is now protected."""
        return self._set(True)

    def unprotect(self) -> bool:
        """Let scale-in take this instance again; returns whether that is now so."""
        return self._set(False)

    def busy(self, owner: str) -> None:
        """``owner`` (one worker slot) holds messages: protect while any owner does."""
        with self._owners_lock:
            self._owners.add(owner)
            self.protect()

    def idle(self, owner: str) -> None:
        """``owner`` holds nothing: lift the protection once no owner holds anything."""
        with self._owners_lock:
            self._owners.discard(owner)
            if not self._owners:
                self.unprotect()

    def _set(self, protected: bool) -> bool:
        with self._lock:
            if self._protected is protected:
                return True
            try:
                self._autoscaling.set_instance_protection(
                    InstanceIds=[self.instance_id],
                    AutoScalingGroupName=self.asg_name,
                    ProtectedFromScaleIn=protected,
                )
            except Exception as exc:  # best effort by contract: see the class docstring
                self._protected = None
                log.warning(
                    "could not %s instance %s in %s: %s",
                    "protect" if protected else "unprotect",
                    self.instance_id,
                    self.asg_name,
                    exc,
                )
                return False
            self._protected = protected
            log.info(
                "instance %s %s scale-in",
                self.instance_id,
                "protected from" if protected else "open to",
            )
            return True


def instance_id_from_imds(timeout: float = IMDS_TIMEOUT_S, base_url: str = IMDS_URL) -> str | None:
    """This EC2 instance's id through IMDSv2 (a PUT for a token, then the GET), or None
    quickly off EC2 (or when the metadata service refuses or answers nonsense).

    Proxies are bypassed: a proxy from the environment must not see metadata requests. In a
    container on a bridge network the token's answer needs a hop limit of 2 on the instance
    (the launch template's ``HttpPutResponseHopLimit``).
    """
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        token_request = urllib.request.Request(
            f"{base_url}/latest/api/token",
            method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": str(IMDS_TOKEN_TTL_S)},
        )
        with opener.open(token_request, timeout=timeout) as reply:
            token = reply.read().decode("ascii", "replace").strip()
        id_request = urllib.request.Request(
            f"{base_url}/latest/meta-data/instance-id",
            headers={"X-aws-ec2-metadata-token": token},
        )
        with opener.open(id_request, timeout=timeout) as reply:
            instance_id = reply.read().decode("ascii", "replace").strip()
    # URLError, HTTPError and timeouts are OSErrors; a garbled answer is an HTTPException.
    except (OSError, ValueError, http.client.HTTPException) as exc:
        log.debug("no instance metadata at %s: %s", base_url, exc)
        return None
    return instance_id if _INSTANCE_ID.fullmatch(instance_id) else None


def from_settings(
    settings: Settings,
    clients: Clients | None = None,
    *,
    autoscaling: Any = None,
    instance_id: str | None = None,
) -> ScaleInProtection | None:
    """The protection for this worker's instance, or None when there is none to manage.

    None when ``PAGEDROP_ASG_NAME`` is unset; also (with a warning) when it is set but the
    instance id cannot be read (not on EC2, or IMDS unreachable from the container).
    ``autoscaling`` defaults to ``clients.autoscaling`` when the clients carry one, else a
    client built for the settings' region, endpoint and profile.
    """
    asg_name = str(settings.asg_name)
    if not asg_name:
        return None
    instance_id = instance_id or instance_id_from_imds()
    if instance_id is None:
        log.warning(
            "PAGEDROP_ASG_NAME is %s but the instance id is unknown (no instance metadata): "
            "this worker runs without scale-in protection",
            asg_name,
        )
        return None
    if autoscaling is None:
        autoscaling = getattr(clients, "autoscaling", None) or _autoscaling_client(settings)
    return ScaleInProtection(autoscaling, asg_name, instance_id)


def _autoscaling_client(settings: Settings) -> Any:
    import boto3

    from handler.aws import client_config

    session = boto3.Session(profile_name=settings.profile, region_name=settings.region)
    kwargs: dict[str, Any] = {"config": client_config(), "region_name": settings.region}
    if settings.endpoint_url:
        kwargs["endpoint_url"] = settings.endpoint_url
    return session.client("autoscaling", **kwargs)
