#!/usr/bin/env python3
"""A Carbon API client in Python 3 using only the standard library.

It speaks the socket API the way the Carbon API manual describes it, not
the way our Rust client does, so it proves the wire format itself:

- every request is `CarbonAPIXML1 <N> <xml>`, where the XML starts with
  `<?xml version="1.0" encoding="UTF-8"?>`, the root is
  `<cnpsXML CarbonAPIVer="1.2" TaskType="...">`, the text is UTF-8 and N is
  its length in BYTES;
- ONE request per connection: connect, send the frame, read until the
  server closes the socket, then parse the one reply frame that arrived
  (header, length, payload; the length must match exactly);
- replies are parsed with xml.etree: the root must be `<Reply>` with
  `Success="TRUE"` (or "FALSE" with an `Error` where a refusal is expected)
  and the shapes of the issue-13 spec.

It exercises every task type (Version, CarbonRoles, NodeList, NodeCommand,
ProfileList, JobEvaluate, JobQueue, JobList, JobStatusList, JobCommand) and
every command: GetNodeStatus, GetServerNodeStatus, GetProperties,
SetNodeStatus; QueryInfo, Query, Pause, Resume, SetPriority, Stop, Requeue,
Remove, plus refusals (unknown GUID, unknown node, a command that does not
apply). With the node disabled it queues 1,000 small jobs and pages through
them with <Filter> and <ListSettings>, then removes them.

Usage: carbon_client.py HOST PORT SOURCE DEST_DIR [--seconds S] [--size WxH]

PORT is the one-request-per-connection listener (`--carbon-coder`). SOURCE
is a media file the server may read, DEST_DIR a folder it may write to.
--seconds and --size are the clip's length and picture size, checked
against JobEvaluate when given.

Prints the GUID of the job named "from python" on line 1 and its output
file on line 2; progress ("ok ...") goes to stderr. Exits 1 with the reason
on any failure.
"""

import argparse
import calendar
import os
import re
import socket
import sys
import time
import traceback
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

HEADER = b"CarbonAPIXML1"
DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
API_VERSION = "1.2"

# The seed's preset: H.264/AAC in MP4, built in.
SEED_PRESET = "{85DCCE70-0B4F-4328-86D1-5FC7756D9777}"

# The job the Rust test looks for afterwards (tests/interop.rs).
JOB_NAME = "from python"
DESCRIPTION = "submitted by carbon_client.py, the stdlib peer"
USER = "carbon_client.py"
# Not ASCII, so the frame's byte count differs from its character count.
DESTINATION_NAME = "web-\u00e9"
BASE_NAME = "%s-py"
PRIORITY = 5
NEW_PRIORITY = 9

PAGE_JOBS = 1000
PAGE_SIZE = 100
REPLY_CAP = 1000  # jobs in one list reply (spec: no reply is unbounded)
ONE_JOB_REPLY_LIMIT = 1000  # bytes (spec: a one-job reply stays under it)

# The Rust test kills the script after 90 s; fail with a reason before that.
BUDGET_SECS = 80
WAIT_SECS = 60
IO_TIMEOUT_SECS = 15
POLL_SECS = 0.05
HOLD_SECS = 0.6
MAX_REPLY_BYTES = 16 << 20

STARTED_AT_MONO = time.monotonic()
STARTED_AT_WALL = time.time()
BUDGET_END = STARTED_AT_MONO + BUDGET_SECS

STATUSES = (
    "PREPARING", "QUEUED", "STARTING", "STARTED", "PAUSING", "PAUSED",
    "RESUMING", "STOPPING", "STOPPED", "COMPLETED", "ERROR", "INVALID",
)
ENDED = ("COMPLETED", "ERROR", "STOPPED", "INVALID")
RUNNING = ("STARTED", "PAUSING", "PAUSED", "RESUMING", "STOPPING")
JOB_COMMANDS = (
    "QueryInfo", "Query", "Stop", "Pause", "Resume", "SetPriority", "Requeue", "Remove",
)

# The job record's attributes, in the spec's order; the first 15 always.
RECORD_ORDER = (
    "Name", "GUID", "State", "Status", "Progress.DWD", "Description", "User",
    "SourceDescription", "AgentIP", "Guid", "Priority.DWD",
    "DeleteProcessedSource.DWD", "CheckInTime", "CheckInTime_CNLT",
    "CheckInTime_SCM", "StartTime", "StartTime_CNLT", "StartTime_SCM",
    "CompletedTime", "CompletedTime_CNLT", "CompletedTime_SCM", "FPS.DBL",
    "Speed.DBL", "QueuePosition.DWD",
)
RECORD_REQUIRED = RECORD_ORDER[:15]

GUID_RE = re.compile(r"\{[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}\}", re.I)
INT_RE = re.compile(r"-?[0-9]+")
PLAIN_TIME_RE = re.compile(r"[0-9]{2}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
ISO_TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
VERSION_RE = re.compile(r".+ ver\. [0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")


class Failed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failed(message)


STEP = ["starting"]
LAST_REPLY = [""]


def step(name):
    STEP[0] = name


def ok(message):
    print("ok %5.1fs %s" % (time.monotonic() - STARTED_AT_MONO, message), file=sys.stderr)


# ---------------------------------------------------------------- XML out

def E(tag, attrs=None, *children):
    """An element with attributes in the given order and children."""
    element = ET.Element(tag)
    for name, value in (attrs or {}).items():
        element.set(name, str(value))
    element.extend(children)
    return element


def attr_escape(value):
    return escape(value, {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"})


def to_xml(element):
    """Serialises like the manual's examples: `<a b="c"/>`, double quotes."""
    parts = ["<", element.tag]
    for name, value in element.attrib.items():
        parts.append(' %s="%s"' % (name, attr_escape(value)))
    text = element.text if element.text and element.text.strip() else ""
    if len(element) == 0 and not text:
        parts.append("/>")
    else:
        parts.append(">")
        parts.append(escape(text))
        for child in element:
            parts.append(to_xml(child))
        parts.append("</%s>" % element.tag)
    tail = element.tail if element.tail and element.tail.strip() else ""
    parts.append(escape(tail))
    return "".join(parts)


# ---------------------------------------------------------------- the wire

def remaining():
    return BUDGET_END - time.monotonic()


class Carbon:
    """One connection per request, as the manual says."""

    def __init__(self, host, port):
        self.host = host
        self.port = port
        self.requests = 0
        self.last_size = 0

    def exchange(self, payload):
        """Sends one frame on a fresh connection and returns the reply payload."""
        left = remaining()
        check(left > 0, "over the %d s time budget" % BUDGET_SECS)
        timeout = min(IO_TIMEOUT_SECS, left)
        frame = HEADER + b" " + str(len(payload)).encode("ascii") + b" " + payload
        chunks = []
        size = 0
        with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
            sock.sendall(frame)
            while True:
                try:
                    chunk = sock.recv(65536)
                except socket.timeout:
                    raise Failed(
                        "the server did not close the connection within %.0f s "
                        "(%d bytes arrived)" % (timeout, size)
                    )
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                check(size <= MAX_REPLY_BYTES, "reply over %d bytes" % MAX_REPLY_BYTES)
        self.requests += 1
        return parse_frame(b"".join(chunks))

    def send(self, root, success=True):
        """Sends `root` (a `cnpsXML` element); returns the `<Reply>` root.

        success=True requires Success="TRUE"; False requires a refusal:
        Success="FALSE" with a non-empty Error."""
        check(root.tag == "cnpsXML", "request root is " + root.tag)
        payload = (DECLARATION + to_xml(root)).encode("utf-8")
        data = self.exchange(payload)
        self.last_size = len(data)
        LAST_REPLY[0] = data.decode("latin-1")
        try:
            data.decode("ascii")
        except UnicodeDecodeError:
            raise Failed("reply payload is not ASCII (the spec writes non-ASCII as &#N;)")
        try:
            reply = ET.fromstring(data)
        except ET.ParseError as e:
            raise Failed("reply is not well-formed XML: %s" % e)
        task = root.get("TaskType")
        check(reply.tag == "Reply", "%s reply root is <%s>, not <Reply>" % (task, reply.tag))
        verdict = reply.get("Success")
        check(verdict in ("TRUE", "FALSE"), "%s reply has Success=%r" % (task, verdict))
        if success:
            check(verdict == "TRUE", "%s refused: %s" % (task, reply.get("Error")))
        else:
            check(verdict == "FALSE", "%s was accepted, a refusal was expected" % task)
            check((reply.get("Error") or "").strip(), "%s refusal has no Error" % task)
        return reply

    def call(self, task, attrs=None, children=(), success=True):
        root = E("cnpsXML", dict({"CarbonAPIVer": API_VERSION, "TaskType": task}, **(attrs or {})))
        root.extend(children)
        return self.send(root, success)


def parse_frame(data):
    """`CarbonAPIXML1 <N> <payload>`: returns the payload, exactly N bytes."""
    check(data, "the server closed the connection without a reply")
    prefix = HEADER + b" "
    check(data.startswith(prefix), "reply is not a Carbon frame: %r" % data[:40])
    digits, space, payload = data[len(prefix):].partition(b" ")
    check(space and digits.isdigit() and len(digits) <= 10,
          "bad reply frame length: %r" % data[:40])
    announced = int(digits)
    check(len(payload) == announced,
          "reply frame announces %d bytes, %d arrived before the close"
          % (announced, len(payload)))
    return payload


# ---------------------------------------------------------------- shapes

def child(parent, tag, what):
    found = parent.find(tag)
    check(found is not None, "%s has no <%s>" % (what, tag))
    return found


def numbered(parent, prefix, what):
    """The children `prefix_0`, `prefix_1`, ... in order, no gaps."""
    pattern = re.compile(re.escape(prefix) + r"_([0-9]+)")
    items = []
    for element in parent:
        match = pattern.fullmatch(element.tag)
        if match:
            items.append((int(match.group(1)), element))
    indices = [index for index, _ in items]
    check(indices == list(range(len(items))),
          "%s: %s_n are numbered %s, not 0..%d in order" % (what, prefix, indices, len(items) - 1))
    return [element for _, element in items]


def attr(element, name, what):
    value = element.get(name)
    check(value is not None, "%s has no %s" % (what, name))
    return value


def int_attr(element, name, what):
    value = attr(element, name, what)
    check(INT_RE.fullmatch(value), "%s %s=%r is not a decimal integer" % (what, name, value))
    return int(value)


def float_attr(element, name, what):
    value = attr(element, name, what)
    try:
        return float(value)
    except ValueError:
        raise Failed("%s %s=%r is not a number" % (what, name, value))


def is_guid(value):
    return bool(value) and GUID_RE.fullmatch(value) is not None


def same_path(a, b):
    return os.path.realpath(a) == os.path.realpath(b)


def check_times(element, prefix, what, ours):
    plain = attr(element, prefix, what)
    cnlt = attr(element, prefix + "_CNLT", what)
    scm = attr(element, prefix + "_SCM", what)
    check(PLAIN_TIME_RE.fullmatch(plain), "%s %s=%r is not MM/DD/YY hh:mm:ss" % (what, prefix, plain))
    check(ISO_TIME_RE.fullmatch(cnlt), "%s %s_CNLT=%r is not YYYY-MM-DD hh:mm:ss" % (what, prefix, cnlt))
    check(ISO_TIME_RE.fullmatch(scm), "%s %s_SCM=%r is not YYYY-MM-DD hh:mm:ss" % (what, prefix, scm))
    t_plain = time.strptime(plain, "%m/%d/%y %H:%M:%S")
    t_cnlt = time.strptime(cnlt, "%Y-%m-%d %H:%M:%S")
    t_scm = time.strptime(scm, "%Y-%m-%d %H:%M:%S")
    check(t_plain[:6] == t_cnlt[:6], "%s %s %r and _CNLT %r differ" % (what, prefix, plain, cnlt))
    local = time.mktime(t_cnlt)
    gmt = calendar.timegm(t_scm)
    check(abs(local - gmt) <= 1,
          "%s %s_CNLT %r (local) and _SCM %r (GMT) are not the same instant" % (what, prefix, cnlt, scm))
    if ours:
        check(STARTED_AT_WALL - 5 <= gmt <= time.time() + 5,
              "%s %s_SCM %r is not during this run (GMT)" % (what, prefix, scm))


def check_record(element, what, node_ip=None, ours=True):
    """The job record of a `Job_n` or `<JobInfo>`."""
    what = "%s %s" % (what, element.get("Name"))
    for name in RECORD_REQUIRED:
        attr(element, name, what)
    known = [name for name in element.attrib if name in RECORD_ORDER]
    check(known == sorted(known, key=RECORD_ORDER.index),
          "%s attributes out of the spec's order: %s" % (what, " ".join(known)))
    status = element.get("Status")
    check(status in STATUSES, "%s Status=%r" % (what, status))
    state = "NEX_JOB_QUEUE" if status == "QUEUED" else "NEX_JOB_" + status
    check(element.get("State") == state, "%s State=%r with Status %s" % (what, element.get("State"), status))
    check(is_guid(element.get("GUID")), "%s GUID=%r" % (what, element.get("GUID")))
    check(element.get("Guid") == element.get("GUID"), "%s Guid differs from GUID" % what)
    progress = int_attr(element, "Progress.DWD", what)
    check(0 <= progress <= 100, "%s Progress.DWD=%d" % (what, progress))
    int_attr(element, "Priority.DWD", what)
    check(element.get("DeleteProcessedSource.DWD") == "0", "%s DeleteProcessedSource.DWD" % what)
    for prefix in ("CheckInTime", "StartTime", "CompletedTime"):
        present = [name in element.attrib for name in (prefix, prefix + "_CNLT", prefix + "_SCM")]
        check(all(present) or not any(present), "%s has part of the %s triple" % (what, prefix))
        if all(present) or prefix == "CheckInTime":
            check_times(element, prefix, what, ours)
    if status in ("STARTED", "PAUSED", "COMPLETED"):
        check("StartTime" in element.attrib, "%s is %s without a StartTime" % (what, status))
    if status == "COMPLETED":
        check("CompletedTime" in element.attrib, "%s is COMPLETED without a CompletedTime" % what)
        check(progress == 100, "%s COMPLETED at %d%%" % (what, progress))
    agent = element.get("AgentIP")
    if "StartTime" not in element.attrib:
        check(agent == "unassigned", "%s never started but AgentIP=%r" % (what, agent))
    if status in RUNNING and node_ip is not None:
        check(agent == node_ip, "%s is %s with AgentIP=%r, not the node %s" % (what, status, agent, node_ip))
    for name in ("FPS.DBL", "Speed.DBL"):
        if name in element.attrib:
            float_attr(element, name, what)
    if "QueuePosition.DWD" in element.attrib:
        int_attr(element, "QueuePosition.DWD", what)
    failures = child(element, "Failures", what)
    child(failures, "Warnings", what + " <Failures>")
    errors = child(failures, "Errors", what + " <Failures>")
    if status == "ERROR":
        first = numbered(errors, "Error", what + " <Errors>")
        check(first and first[0].get("Error"), "%s is ERROR without Error_0 Error" % what)
    return element


def failure_texts(element):
    failures = element.find("Failures")
    if failures is None:
        return ""
    texts = [e.get("Error") or e.get("Warning") for e in failures.iter() if e.get("Error") or e.get("Warning")]
    return ": " + "; ".join(texts) if texts else ""


# ---------------------------------------------------------------- tasks

def job_status_list(carbon, criteria=(), settings=None, node_ip=None, ours=True):
    """criteria: (Parameter, Operator or None, Value). Returns (jobs, total)."""
    children = []
    if criteria:
        conditions = []
        for n, (parameter, operator, value) in enumerate(criteria):
            attrs = {"Parameter": parameter}
            if operator is not None:
                attrs["Operator"] = operator
            attrs["Value"] = value
            conditions.append(E("Criteria_%d" % n, attrs))
        children.append(E("Filter", None, *conditions))
    if settings is not None:
        children.append(E("ListSettings", settings))
    reply = carbon.call("JobStatusList", children=children)
    listing = child(reply, "JobStatusList", "JobStatusList reply")
    count = int_attr(listing, "NrOfJobs.DWD", "<JobStatusList>")
    total = int_attr(listing, "TotalNrOfJobs.DWD", "<JobStatusList>")
    jobs = numbered(listing, "Job", "<JobStatusList>")
    check(count == len(jobs), "NrOfJobs.DWD=%d but %d Job_n" % (count, len(jobs)))
    check(count <= total, "NrOfJobs.DWD=%d over TotalNrOfJobs.DWD=%d" % (count, total))
    check(count <= REPLY_CAP, "%d jobs in one reply (cap %d)" % (count, REPLY_CAP))
    for job in jobs:
        check_record(job, "Job_n", node_ip, ours)
    return jobs, total


def job_record(carbon, guid, node_ip):
    """The job's record from a JobStatusList on its GUID."""
    jobs, total = job_status_list(carbon, [("GUID", None, guid)], node_ip=node_ip)
    check(len(jobs) == 1 and total == 1, "GUID filter found %d jobs (total %d)" % (len(jobs), total))
    check(jobs[0].get("GUID") == guid, "GUID filter found %s" % jobs[0].get("GUID"))
    check(carbon.last_size < ONE_JOB_REPLY_LIMIT,
          "a one-job JobStatusList reply is %d bytes" % carbon.last_size)
    return jobs[0]


def job_command(carbon, guid, command, node_ip=None, success=True, **attrs):
    """A JobCommand on a <JobCommand> child. On success returns <JobInfo>
    (or <Job> for Query); on an expected refusal, the Error text."""
    element = E("JobCommand", dict({"Command": command, "GUID": guid}, **attrs))
    reply = carbon.call("JobCommand", children=[element], success=success)
    if not success:
        return reply.get("Error")
    what = "%s reply" % command
    if command == "Query":
        check(reply.find("JobInfo") is None, "Query answered <JobInfo>, not <Job>")
        return child(reply, "Job", what)
    info = child(reply, "JobInfo", what)
    check_record(info, what, node_ip)
    check(info.get("GUID") == guid, "%s describes %s, not %s" % (what, info.get("GUID"), guid))
    sources = numbered(child(info, "Sources", what), "Module", what + " <Sources>")
    check(len(sources) == 1, "%s has %d source modules" % (what, len(sources)))
    attr(sources[0], "Filename", what + " source")
    destinations = numbered(child(info, "Destinations", what), "Module", what + " <Destinations>")
    check(destinations, "%s has no destination module" % what)
    for module in destinations:
        check(is_guid(attr(module, "PresetGUID", what + " destination")), "%s PresetGUID" % what)
        attr(module, "PresetName", what + " destination")
        data = child(module, "ModuleData", what + " destination")
        attr(data, "CML_P_Path", what + " <ModuleData>")
        attr(data, "CML_P_BaseFileName", what + " <ModuleData>")
        targets = module.find("TargetFiles")
        if targets is not None:
            target_files(targets, what + " <TargetFiles>")
    return info


def target_files(targets, what):
    """`<TargetFiles File_0="..." File_1="..."/>`: the File_n attributes in order, no gaps."""
    files = []
    while ("File_%d" % len(files)) in targets.attrib:
        files.append(targets.get("File_%d" % len(files)))
    check(len(files) == len(targets.attrib), "%s: attributes %r are not File_0..File_n" % (what, sorted(targets.attrib)))
    return files


def queue(carbon, root):
    """Submits a JobQueue; returns the new GUID (the reply's FIRST attribute)."""
    reply = carbon.send(root)
    attributes = list(reply.attrib)
    check(attributes[:1] == ["GUID"], "JobQueue reply attributes %s: GUID is not first" % attributes)
    guid = reply.get("GUID")
    check(is_guid(guid), "JobQueue reply GUID=%r" % guid)
    return guid


def job_queue_request(name, source, dest, base_name, description=None, user=None,
                      destination_name=None, priority=None):
    attrs = {"CarbonAPIVer": API_VERSION, "TaskType": "JobQueue", "JobName": name}
    if description is not None:
        attrs["Description"] = description
    if user is not None:
        attrs["User"] = user
    destination = {"PresetGUID": SEED_PRESET}
    if destination_name is not None:
        destination["DestinationName"] = destination_name
    children = [
        E("Sources", None, E("Module_0", {"Filename": source})),
        E("Destinations", None, E("Module_0", destination,
            E("ModuleData", {"CML_P_Path": dest, "CML_P_BaseFileName": base_name}))),
    ]
    if priority is not None:
        children.append(E("ProjectSettings", {"Priority.DWD": priority}))
    return E("cnpsXML", attrs, *children)


def wait_for(carbon, guid, wanted, what, node_ip):
    """Polls the job until wanted(status, progress); fails if it ends otherwise."""
    deadline = min(time.monotonic() + WAIT_SECS, BUDGET_END)
    while True:
        job = job_record(carbon, guid, node_ip)
        status, progress = job.get("Status"), int(job.get("Progress.DWD"))
        if wanted(status, progress):
            return job
        if status in ENDED:
            raise Failed("job ended %s while waiting for %s%s" % (status, what, failure_texts(job)))
        if time.monotonic() > deadline:
            raise Failed("timed out waiting for %s (at %s %d%%)" % (what, status, progress))
        time.sleep(POLL_SECS)


def set_enabled(carbon, node_ip, enabled):
    reply = carbon.call("NodeCommand", children=[E("NodeCommand", {
        "NodeIP": node_ip, "Command": "SetNodeStatus", "Enabled.DWD": enabled})])
    status = child(reply, "NodeStatus", "SetNodeStatus reply")
    check(int_attr(status, "Enabled.DWD", "SetNodeStatus <NodeStatus>") == enabled,
          "SetNodeStatus Enabled.DWD=%d answered Enabled.DWD=%s" % (enabled, status.get("Enabled.DWD")))
    again = node_status(carbon, node_ip)
    check(int(again.get("Enabled.DWD")) == enabled,
          "GetNodeStatus after SetNodeStatus shows Enabled.DWD=%s" % again.get("Enabled.DWD"))
    return again


def node_status(carbon, node_ip):
    attrs = {"Command": "GetNodeStatus"}
    if node_ip is not None:
        attrs = {"NodeIP": node_ip, "Command": "GetNodeStatus"}
    reply = carbon.call("NodeCommand", children=[E("NodeCommand", attrs)])
    status = child(reply, "NodeStatus", "GetNodeStatus reply")
    what = "<NodeStatus>"
    check(int_attr(status, "Enabled.DWD", what) in (0, 1), "Enabled.DWD is not 0/1")
    int_attr(status, "Priority.DWD", what)
    check(int_attr(status, "Slots.DWD", what) >= 1, "Slots.DWD < 1")
    check("FreeSlots.DWD" not in status.attrib, "GetNodeStatus carries FreeSlots.DWD (manual: no)")
    for name in ("RunningJobs.DWD", "QueuedJobs.DWD"):
        if name in status.attrib:
            int_attr(status, name, what)
    return status


# ---------------------------------------------------------------- the run

def server_and_node(carbon):
    step("Version")
    version = carbon.call("Version")
    check(VERSION_RE.fullmatch(version.get("Version") or ""),
          "Version=%r is not '<product> ver. NN.NN.NN.NN'" % version.get("Version"))
    if version.get("CarbonAPIVer") is not None:
        check(version.get("CarbonAPIVer").split(".")[0] == API_VERSION.split(".")[0],
              "CarbonAPIVer=%r" % version.get("CarbonAPIVer"))
    ok("Version: %s" % version.get("Version"))

    step("CarbonRoles")
    roles = carbon.call("CarbonRoles")
    check(roles.get("CarbonRole") == "SERVER", "CarbonRole=%r" % roles.get("CarbonRole"))
    ok("CarbonRoles: SERVER")

    step("NodeList")
    listing = child(carbon.call("NodeList"), "NodeList", "NodeList reply")
    ips = []
    while "Node_%d" % len(ips) in listing.attrib:
        ips.append(listing.get("Node_%d" % len(ips)))
    check(ips and all(ips), "NodeList has no Node_0 attribute")
    check(len(ips) == len([a for a in listing.attrib if re.fullmatch(r"Node_[0-9]+", a)]),
          "NodeList Node_n attributes have gaps")
    node_ip = ips[0]
    ok("NodeList: %s" % " ".join(ips))

    step("NodeCommand")
    status = node_status(carbon, node_ip)
    check(status.get("Enabled.DWD") == "1", "the node starts disabled")
    node_status(carbon, None)  # no NodeIP: this node
    reply = carbon.call("NodeCommand", children=[E("NodeCommand", {
        "NodeIP": node_ip, "Command": "GetServerNodeStatus"})])
    server = child(reply, "ServerNodeStatus", "GetServerNodeStatus reply")
    what = "<ServerNodeStatus>"
    check(int_attr(server, "Enabled.DWD", what) == 1, "ServerNodeStatus Enabled.DWD")
    int_attr(server, "Priority.DWD", what)
    slots = int_attr(server, "Slots.DWD", what)
    free = int_attr(server, "FreeSlots.DWD", what)
    check(slots >= 1 and 0 <= free <= slots, "Slots.DWD=%d FreeSlots.DWD=%d" % (slots, free))
    reply = carbon.call("NodeCommand", children=[E("NodeCommand", {
        "NodeIP": node_ip, "Command": "GetProperties"})])
    properties = child(reply, "NodeProperties", "GetProperties reply")
    check(properties.get("Version"), "NodeProperties has no Version")
    attr(properties, "Tags", "<NodeProperties>")
    reply = carbon.call("NodeCommand", children=[E("NodeCommand", {
        "NodeIP": "192.0.2.1", "Command": "GetNodeStatus"})], success=False)
    check("no node with IP" in reply.get("Error"), "unknown NodeIP: Error=%r" % reply.get("Error"))
    ok("NodeCommand: GetNodeStatus, GetServerNodeStatus, GetProperties, unknown NodeIP refused")
    return node_ip


def profiles(carbon):
    step("ProfileList")

    def listed(children):
        reply = carbon.call("ProfileList", children=children)
        listing = child(reply, "ProfileList", "ProfileList reply")
        count = int_attr(listing, "NrOfProfiles.DWD", "<ProfileList>")
        items = numbered(listing, "Profile", "<ProfileList>")
        check(count == len(items), "NrOfProfiles.DWD=%d but %d Profile_n" % (count, len(items)))
        return items

    destinations = listed([E("ProfileAttributes", {"ProfileType": "Destination"})])
    check(destinations, "no Destination profiles")
    seed = None
    for profile in destinations:
        what = "Profile %s" % profile.get("Name")
        check(is_guid(attr(profile, "GUID", what)), "%s GUID" % what)
        for name in ("Name", "Category", "Description"):
            attr(profile, name, what)
        flags = int_attr(profile, "ProfileFlags.DWD", what)
        check(flags & 0x01, "%s ProfileFlags.DWD=%d: not queueable" % (what, flags))
        if profile.get("GUID").upper() == SEED_PRESET:
            seed = profile
    check(seed is not None, "ProfileList does not list the seed preset %s" % SEED_PRESET)
    everything = listed([])
    check(len(everything) == len(destinations),
          "no ProfileAttributes lists %d, Destination %d" % (len(everything), len(destinations)))
    check(listed([E("ProfileAttributes", {"ProfileType": "Connection"})]) == [],
          "ProfileType Connection lists profiles")
    ok("ProfileList: %d Destination profiles, seed preset %r flags %s"
       % (len(destinations), seed.get("Name"), seed.get("ProfileFlags.DWD")))


def evaluate(carbon, source, seconds, size):
    step("JobEvaluate")
    reply = carbon.call("JobEvaluate", children=[
        E("Sources", None, E("Module_0", {"Filename": source})),
        E("Destinations", None, E("Module_0", {"PresetGUID": SEED_PRESET})),
    ])
    result = child(reply, "JobEvaluateResult", "JobEvaluate reply")
    sources = numbered(child(result, "Sources", "<JobEvaluateResult>"), "Module", "<Sources>")
    check(len(sources) == 1, "%d evaluated sources" % len(sources))
    module = sources[0]
    check(same_path(attr(module, "Filename", "source module"), source),
          "evaluated Filename=%r" % module.get("Filename"))
    child(module, "ModuleData", "source module")
    public = child(module, "PublicDescription", "source module")
    duration = int_attr(public, "Duration.QWD", "<PublicDescription>")
    check(duration > 0, "Duration.QWD=%d" % duration)
    if seconds is not None:
        expected = seconds * 27000000
        check(abs(duration - expected) <= 27000000 // 2,
              "Duration.QWD=%d is not %g s in 27 MHz ticks (%d)" % (duration, seconds, expected))
    video = child(public, "Video", "<PublicDescription>")
    width = int_attr(video, "Size_X.DWD", "<Video>")
    height = int_attr(video, "Size_Y.DWD", "<Video>")
    if size is not None:
        check((width, height) == size, "Size_X/Y %dx%d, the clip is %dx%d" % ((width, height) + size))
    attr(video, "Codec", "<Video>")
    check(video.get("Interlacing") in ("Progressive", "Top First", "Bottom First"),
          "Interlacing=%r" % video.get("Interlacing"))
    check(int_attr(video, "Video_Aspect_X.DWD", "<Video>") > 0, "Video_Aspect_X.DWD")
    check(int_attr(video, "Video_Aspect_Y.DWD", "<Video>") > 0, "Video_Aspect_Y.DWD")
    if "FrameDuration.QWD" in video.attrib:
        frame = int_attr(video, "FrameDuration.QWD", "<Video>")
        check(27000000 // 240 <= frame <= 27000000, "FrameDuration.QWD=%d" % frame)
    audio = child(public, "Audio", "<PublicDescription>")
    check(int_attr(audio, "SampleRate.DWD", "<Audio>") > 0, "SampleRate.DWD")
    int_attr(audio, "SampleSize.DWD", "<Audio>")
    check(int_attr(audio, "Channels.DWD", "<Audio>") > 0, "Channels.DWD")
    attr(audio, "Codec", "<Audio>")
    echoed = numbered(child(result, "Destinations", "<JobEvaluateResult>"), "Module", "<Destinations>")
    check(len(echoed) == 1 and (echoed[0].get("PresetGUID") or "").upper() == SEED_PRESET,
          "JobEvaluate does not echo the destination")
    ok("JobEvaluate: %.2f s (%d ticks), %dx%d %s, %s Hz"
       % (duration / 27e6, duration, width, height, video.get("Interlacing"),
          audio.get("SampleRate.DWD")))


def submit_first(carbon, source, dest, node_ip):
    step("JobQueue")
    guid = queue(carbon, job_queue_request(
        JOB_NAME, source, dest, BASE_NAME, description=DESCRIPTION, user=USER,
        destination_name=DESTINATION_NAME, priority=PRIORITY))
    ok("JobQueue: %s (node disabled)" % guid)

    step("JobList")
    reply = carbon.call("JobList")
    count = int_attr(reply, "NrOfJobs.DWD", "JobList <Reply>")
    jobs = numbered(child(reply, "JobList", "JobList reply"), "Job", "<JobList>")
    check(count == len(jobs), "NrOfJobs.DWD=%d but %d Job_n" % (count, len(jobs)))
    mine = [job for job in jobs if job.get("GUID") == guid]
    check(len(mine) == 1, "JobList lists the job %d times" % len(mine))
    check(mine[0].get("Name") == JOB_NAME, "JobList Name=%r" % mine[0].get("Name"))
    ok("JobList: %d jobs, ours named %r" % (count, JOB_NAME))

    step("JobStatusList")
    jobs, total = job_status_list(
        carbon, [("JobName", None, JOB_NAME), ("Status", "EQUAL", "QUEUED")], node_ip=node_ip)
    check(len(jobs) == 1 and total == 1, "JobName + Status QUEUED found %d (total %d)" % (len(jobs), total))
    job = jobs[0]
    check(job.get("GUID") == guid, "JobName filter found %s" % job.get("GUID"))
    check(job.get("Name") == JOB_NAME, "Name=%r" % job.get("Name"))
    check(job.get("Description") == DESCRIPTION, "Description=%r" % job.get("Description"))
    check(job.get("User") == USER, "User=%r" % job.get("User"))
    check(job.get("Priority.DWD") == str(PRIORITY), "Priority.DWD=%r" % job.get("Priority.DWD"))
    check(carbon.last_size < ONE_JOB_REPLY_LIMIT, "one-job reply is %d bytes" % carbon.last_size)
    jobs, total = job_status_list(
        carbon, [("JobName", None, JOB_NAME), ("Status", None, "STARTED")], node_ip=node_ip)
    check(not jobs and total == 0, "a queued job matched Status STARTED")
    ok("JobStatusList: JobName (no Operator) and Status criteria")

    step("QueryInfo (queued)")
    info = job_command(carbon, guid, "QueryInfo", node_ip)
    check(info.get("Status") == "QUEUED", "QueryInfo Status=%r on a disabled node" % info.get("Status"))
    check(info.get("Description") == DESCRIPTION, "QueryInfo Description=%r" % info.get("Description"))
    check_destination(info, source, dest)
    ok("QueryInfo: QUEUED, Description, <Failures>, Sources, Destinations (%s)" % DESTINATION_NAME)

    step("SetPriority")
    info = job_command(carbon, guid, "SetPriority", node_ip, **{"Priority.DWD": str(NEW_PRIORITY)})
    check(info.get("Priority.DWD") == str(NEW_PRIORITY),
          "SetPriority %d answered Priority.DWD=%r" % (NEW_PRIORITY, info.get("Priority.DWD")))
    check(info.get("Status") == "QUEUED", "SetPriority changed Status to %r" % info.get("Status"))
    ok("SetPriority: %d -> %d" % (PRIORITY, NEW_PRIORITY))
    return guid


def check_destination(info, source, dest):
    module = numbered(info.find("Sources"), "Module", "<Sources>")[0]
    check(same_path(module.get("Filename"), source), "source Filename=%r" % module.get("Filename"))
    destination = numbered(info.find("Destinations"), "Module", "<Destinations>")[0]
    check((destination.get("PresetGUID") or "").upper() == SEED_PRESET,
          "destination PresetGUID=%r" % destination.get("PresetGUID"))
    check(destination.get("DestinationName") == DESTINATION_NAME,
          "DestinationName=%r, submitted %r" % (destination.get("DestinationName"), DESTINATION_NAME))
    data = destination.find("ModuleData")
    check(same_path(data.get("CML_P_Path"), dest), "CML_P_Path=%r" % data.get("CML_P_Path"))
    stem = os.path.splitext(os.path.basename(source))[0]
    base = data.get("CML_P_BaseFileName")
    check(base in (BASE_NAME, BASE_NAME.replace("%s", stem)),
          "CML_P_BaseFileName=%r, submitted %r" % (base, BASE_NAME))
    return destination


def paging(carbon, source, dest, node_ip):
    step("paging: JobQueue x%d" % PAGE_JOBS)
    names = ["page-%04d" % i for i in range(PAGE_JOBS)]
    guids = {}
    for name in names:
        guids[name] = queue(carbon, job_queue_request(name, source, dest, "%s-page"))
    check(len(set(guids.values())) == PAGE_JOBS, "JobQueue returned a GUID twice")
    ok("JobQueue: %d jobs queued" % PAGE_JOBS)

    step("paging: node status")
    status = node_status(carbon, node_ip)
    check(status.get("Enabled.DWD") == "0", "the node is enabled again")
    if "QueuedJobs.DWD" in status.attrib:
        check(int(status.get("QueuedJobs.DWD")) >= PAGE_JOBS + 1,
              "QueuedJobs.DWD=%s" % status.get("QueuedJobs.DWD"))
    if "RunningJobs.DWD" in status.attrib:
        check(status.get("RunningJobs.DWD") == "0", "a disabled node runs %s jobs" % status.get("RunningJobs.DWD"))

    step("paging: JobStatusList pages")
    like = [("JobName", "LIKE", "page-%")]
    seen = []
    for start in range(0, PAGE_JOBS, PAGE_SIZE):
        jobs, total = job_status_list(carbon, like, {
            "OrderBy": "JobName", "OrderByDirection": "ASCENDING",
            "LimitStart.DWD": start, "LimitShow.DWD": PAGE_SIZE}, node_ip=node_ip)
        check(len(jobs) == PAGE_SIZE, "page at %d holds %d jobs" % (start, len(jobs)))
        check(total == PAGE_JOBS, "page at %d: TotalNrOfJobs.DWD=%d" % (start, total))
        got = [job.get("Name") for job in jobs]
        check(got == names[start:start + PAGE_SIZE],
              "page at %d holds %s ... %s" % (start, got[0], got[-1]))
        for job in jobs:
            check(job.get("GUID") == guids[job.get("Name")], "%s has another GUID" % job.get("Name"))
            check(job.get("Status") == "QUEUED", "%s is %s on a disabled node" % (job.get("Name"), job.get("Status")))
        seen.extend(got)
    check(len(seen) == PAGE_JOBS and set(seen) == set(names), "pages do not hold every job once")
    jobs, total = job_status_list(carbon, like, {
        "OrderBy": "JobName", "OrderByDirection": "ASCENDING",
        "LimitStart.DWD": PAGE_JOBS, "LimitShow.DWD": PAGE_SIZE})
    check(not jobs and total == PAGE_JOBS, "the page past the end holds %d (total %d)" % (len(jobs), total))
    jobs, total = job_status_list(carbon, like, {"OrderBy": "JobName", "LimitShow.DWD": 1})
    check([j.get("Name") for j in jobs] == [names[-1]] and total == PAGE_JOBS,
          "OrderBy without direction (DESCENDING) starts at %s" % [j.get("Name") for j in jobs])
    jobs, total = job_status_list(carbon, [("JobName", "LIKE", "page-099_")])
    check(sorted(j.get("Name") for j in jobs) == names[990:1000] and total == 10,
          "LIKE page-099_ found %d (total %d)" % (len(jobs), total))
    ok("JobStatusList: %d pages of %d, in order, every job once" % (PAGE_JOBS // PAGE_SIZE, PAGE_SIZE))

    step("paging: reply cap")
    jobs, total = job_status_list(carbon, ours=False)
    check(len(jobs) == REPLY_CAP and total >= PAGE_JOBS + 1,
          "JobStatusList without a filter: %d jobs, total %d" % (len(jobs), total))
    reply = carbon.call("JobList")
    count = int_attr(reply, "NrOfJobs.DWD", "JobList <Reply>")
    listed = numbered(child(reply, "JobList", "JobList reply"), "Job", "<JobList>")
    check(count == len(listed) == REPLY_CAP, "JobList of %d+ jobs holds %d (NrOfJobs.DWD %d)"
          % (PAGE_JOBS + 1, len(listed), count))
    ok("JobStatusList and JobList stop at %d jobs (total %d)" % (REPLY_CAP, total))

    step("paging: Remove x%d" % PAGE_JOBS)
    for name in names:
        info = job_command(carbon, guids[name], "Remove", node_ip)
        check(info.get("Name") == name, "Remove of %s describes %s" % (name, info.get("Name")))
    jobs, total = job_status_list(carbon, like)
    check(not jobs and total == 0, "%d page jobs left after Remove" % total)
    ok("Remove: %d jobs removed" % PAGE_JOBS)


def run_first(carbon, guid, source, dest, node_ip):
    step("still queued")
    job = job_record(carbon, guid, node_ip)
    check(job.get("Status") == "QUEUED", "the job is %s on a disabled node" % job.get("Status"))
    step("SetNodeStatus Enabled.DWD=1")
    set_enabled(carbon, node_ip, 1)
    ok("SetNodeStatus: Enabled.DWD=1")

    step("Pause")
    job = wait_for(carbon, guid, lambda s, p: s == "STARTED" and p > 0, "the encode to start", node_ip)
    check(job.get("AgentIP") == node_ip, "started job AgentIP=%r" % job.get("AgentIP"))
    info = job_command(carbon, guid, "Pause", node_ip)
    check(info.get("Status") in ("PAUSING", "PAUSED"), "Pause answered %s" % info.get("Status"))
    job = wait_for(carbon, guid, lambda s, p: s == "PAUSED", "PAUSED", node_ip)
    held = int(job.get("Progress.DWD"))
    end = time.monotonic() + HOLD_SECS
    while time.monotonic() < end:
        job = job_record(carbon, guid, node_ip)
        progress = int(job.get("Progress.DWD"))
        check(job.get("Status") == "PAUSED" and progress == held,
              "paused job moved: PAUSED %d%% -> %s %d%%" % (held, job.get("Status"), progress))
        time.sleep(POLL_SECS)
    info = job_command(carbon, guid, "Pause", node_ip)
    check(info.get("Status") == "PAUSED", "Pause of PAUSED answered %s" % info.get("Status"))
    ok("Pause: PAUSED at %d%%, held for %.1f s" % (held, HOLD_SECS))

    step("Resume")
    info = job_command(carbon, guid, "Resume", node_ip)
    check(info.get("Status") in ("RESUMING", "STARTED"), "Resume answered %s" % info.get("Status"))
    wait_for(carbon, guid, lambda s, p: p > held or s == "COMPLETED", "progress after Resume", node_ip)
    job = wait_for(carbon, guid, lambda s, p: s == "COMPLETED", "completion", node_ip)
    ok("Resume: COMPLETED")

    step("QueryInfo (completed)")
    info = job_command(carbon, guid, "QueryInfo", node_ip)
    check(info.get("Status") == "COMPLETED", "QueryInfo Status=%r" % info.get("Status"))
    check(info.get("Description") == DESCRIPTION, "QueryInfo Description=%r" % info.get("Description"))
    check(len(info.find("Failures/Errors")) == 0, "a COMPLETED job has errors%s" % failure_texts(info))
    destination = check_destination(info, source, dest)
    targets = child(destination, "TargetFiles", "completed destination")
    files = target_files(targets, "<TargetFiles>")
    check(len(files) == 1, "%d target files" % len(files))
    output = files[0]
    check(os.path.isabs(output), "output %r is not an absolute path" % output)
    check(same_path(os.path.dirname(output), dest), "output %r is not in %s" % (output, dest))
    stem = os.path.splitext(os.path.basename(source))[0]
    check(os.path.splitext(os.path.basename(output))[0] == BASE_NAME.replace("%s", stem),
          "output %r is not named %s" % (output, BASE_NAME.replace("%s", stem)))
    check(os.path.isfile(output) and os.path.getsize(output) > 0, "output %r is missing or empty" % output)
    error = job_command(carbon, guid, "Pause", success=False)
    ok("QueryInfo: COMPLETED -> %s; Pause of COMPLETED refused (%s)" % (output, error))
    return output


def resubmit(carbon, guid, source, dest, node_ip):
    step("Query")
    job = job_command(carbon, guid, "Query")
    check(job.get("TaskType") == "JobQueue", "Query <Job TaskType=%r>" % job.get("TaskType"))
    for name, value in (("JobName", JOB_NAME), ("Description", DESCRIPTION), ("User", USER)):
        check(job.get(name) == value, "Query <Job %s=%r>, submitted %r" % (name, job.get(name), value))
    module = numbered(child(job, "Sources", "<Job>"), "Module", "<Job><Sources>")
    check(len(module) == 1 and module[0].get("Filename") == source,
          "Query source %r" % [m.get("Filename") for m in module])
    destination = numbered(child(job, "Destinations", "<Job>"), "Module", "<Job><Destinations>")
    check(len(destination) == 1, "Query has %d destinations" % len(destination))
    check(destination[0].get("DestinationName") == DESTINATION_NAME,
          "Query DestinationName=%r" % destination[0].get("DestinationName"))
    data = child(destination[0], "ModuleData", "<Job> destination")
    check(data.get("CML_P_BaseFileName") == BASE_NAME and data.get("CML_P_Path") == dest,
          "Query <ModuleData> %r" % data.attrib)
    job.tag = "cnpsXML"
    if "CarbonAPIVer" not in job.attrib:
        attributes = dict({"CarbonAPIVer": API_VERSION}, **job.attrib)
        job.attrib.clear()
        job.attrib.update(attributes)
    second = queue(carbon, job)
    check(second != guid, "the resubmitted job got the same GUID")
    ok("Query: <Job> resubmitted as %s" % second)

    step("Stop")
    wait_for(carbon, second, lambda s, p: s == "STARTED", "the resubmitted job to start", node_ip)
    info = job_command(carbon, second, "Stop", node_ip)
    check(info.get("Status") in ("STOPPING", "STOPPED"), "Stop answered %s" % info.get("Status"))
    wait_for(carbon, second, lambda s, p: s == "STOPPED", "STOPPED", node_ip)
    info = job_command(carbon, second, "Stop", node_ip)
    check(info.get("Status") == "STOPPED", "Stop of STOPPED answered %s" % info.get("Status"))
    warnings = numbered(info.find("Failures/Warnings"), "Warning", "<Warnings>")
    check([w.get("Warning") for w in warnings][:1] == ["stopped by JobCommand Stop"],
          "STOPPED job warnings %r" % [w.get("Warning") for w in warnings])
    ok("Stop: STOPPED, warning %r" % warnings[0].get("Warning"))

    step("Requeue")
    set_enabled(carbon, node_ip, 0)
    info = job_command(carbon, second, "Requeue", node_ip)
    check(info.get("Status") == "QUEUED", "Requeue answered %s" % info.get("Status"))
    info = job_command(carbon, second, "Resume", node_ip)
    check(info.get("Status") == "QUEUED", "Resume of QUEUED answered %s" % info.get("Status"))
    info = job_command(carbon, second, "SetPriority", node_ip, **{"Priority.DWD": "0"})
    check(info.get("Priority.DWD") == "0", "SetPriority 0 answered %r" % info.get("Priority.DWD"))
    ok("Requeue: QUEUED; Resume of QUEUED unchanged; SetPriority 0")

    step("Remove")
    info = job_command(carbon, second, "Remove", node_ip)
    check(info.get("Status") == "QUEUED", "Remove describes the job as %s" % info.get("Status"))
    error = job_command(carbon, second, "QueryInfo", success=False)
    check("no job with GUID" in error, "QueryInfo after Remove: Error=%r" % error)
    set_enabled(carbon, node_ip, 1)
    ok("Remove: gone (%s)" % error)


def unknown_guid(carbon):
    step("unknown GUID")
    guid = "{%s}" % str(uuid.uuid4()).upper()
    for command in JOB_COMMANDS:
        extra = {"Priority.DWD": "1"} if command == "SetPriority" else {}
        error = job_command(carbon, guid, command, success=False, **extra)
        check("no job with GUID" in error and guid.lower() in error.lower(),
              "%s of an unknown GUID: Error=%r" % (command, error))
    reply = carbon.call("NoSuchTask", success=False)
    ok("every JobCommand refuses an unknown GUID; unknown TaskType refused (%s)" % reply.get("Error"))


def main(args):
    carbon = Carbon(args.host, args.port)
    source, dest = args.source, args.dest
    node_ip = server_and_node(carbon)
    profiles(carbon)
    evaluate(carbon, source, args.seconds, args.size)

    step("SetNodeStatus Enabled.DWD=0")
    set_enabled(carbon, node_ip, 0)
    ok("SetNodeStatus: Enabled.DWD=0")

    guid = submit_first(carbon, source, dest, node_ip)
    paging(carbon, source, dest, node_ip)
    output = run_first(carbon, guid, source, dest, node_ip)
    resubmit(carbon, guid, source, dest, node_ip)
    unknown_guid(carbon)

    step("final listing")
    jobs, total = job_status_list(carbon, [("JobName", None, JOB_NAME)], node_ip=node_ip)
    check([j.get("GUID") for j in jobs] == [guid] and total == 1,
          "jobs named %r: %s" % (JOB_NAME, [j.get("GUID") for j in jobs]))
    check(jobs[0].get("Status") == "COMPLETED", "the job is %s at the end" % jobs[0].get("Status"))
    ok("done: %d requests, one connection each" % carbon.requests)

    print(guid)
    print(output)


class Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        print("carbon_client.py: %s" % message, file=sys.stderr)
        sys.exit(1)


def picture_size(text):
    match = re.fullmatch(r"([0-9]+)x([0-9]+)", text)
    if not match:
        raise argparse.ArgumentTypeError("expected WIDTHxHEIGHT, got %r" % text)
    return int(match.group(1)), int(match.group(2))


def parse_args(argv):
    parser = Parser(description=__doc__.split("\n\n")[0])
    parser.add_argument("host")
    parser.add_argument("port", type=int, help="the one-request-per-connection listener")
    parser.add_argument("source", help="a media file the server may read")
    parser.add_argument("dest", help="a folder the server may write to")
    parser.add_argument("--seconds", type=float, help="the clip's length, checked against JobEvaluate")
    parser.add_argument("--size", type=picture_size, help="the clip's WIDTHxHEIGHT")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args(sys.argv[1:])
    try:
        main(arguments)
    except (Failed, OSError, ValueError) as e:
        print("carbon_client.py: FAILED at %s: %s" % (STEP[0], e), file=sys.stderr)
        if LAST_REPLY[0]:
            print("last reply: %s" % LAST_REPLY[0][:1500], file=sys.stderr)
        sys.exit(1)
    except Exception:
        # A reply shaped so differently that a check was not even reached.
        traceback.print_exc()
        print("carbon_client.py: FAILED at %s (see the traceback)" % STEP[0], file=sys.stderr)
        if LAST_REPLY[0]:
            print("last reply: %s" % LAST_REPLY[0][:1500], file=sys.stderr)
        sys.exit(1)
