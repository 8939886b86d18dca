#!/usr/bin/env python3
"""A Carbon socket client in Python 3 using only the standard library.

It proves the wire format without our Rust client: it frames requests the
way the Carbon API documents them (`CarbonAPIXML1 <length> <xml>`, ISO-8859-1)
and reads the replies with xml.etree.

Usage: carbon_client.py HOST PORT SOURCE DEST_DIR
Submits SOURCE, waits until it is encoding, pauses it, checks it stays
paused, resumes it and waits for COMPLETED. Prints the job GUID; exits 1
with a reason on any failure.
"""

import socket
import sys
import time
import xml.etree.ElementTree as ET
from xml.sax.saxutils import quoteattr

DEADLINE_SECS = 90
MAGIC = b"CarbonAPIXML1 "


class CarbonError(Exception):
    pass


class Carbon:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=30)
        self.buffer = b""

    def _read_exactly(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise CarbonError("the server closed the connection")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def _read_frame(self):
        if self._read_exactly(len(MAGIC)) != MAGIC:
            raise CarbonError("the reply is not a Carbon frame")
        digits = b""
        while True:
            c = self._read_exactly(1)
            if c == b" ":
                break
            if not c.isdigit() or len(digits) > 9:
                raise CarbonError("bad frame length")
            digits += c
        return self._read_exactly(int(digits)).decode("latin-1")

    def request(self, xml):
        payload = xml.encode("latin-1")
        self.sock.sendall(MAGIC + str(len(payload)).encode() + b" " + payload)
        root = ET.fromstring(self._read_frame())
        if root.tag != "cnpsXML":
            raise CarbonError("reply root is " + root.tag)
        if root.get("Success") != "TRUE":
            raise CarbonError("refused: " + str(root.get("Error")))
        return root

    def status(self, guid):
        root = self.request(
            '<cnpsXML TaskType="JobStatusList"><Filter>'
            '<Criteria_0 Parameter="GUID" Operator="EQUAL" Value=%s/>'
            "</Filter></cnpsXML>" % quoteattr(guid)
        )
        job = root.find("JobStatusList/Job_0")
        if job is None:
            raise CarbonError("job %s is not listed" % guid)
        return job.get("Status"), int(job.get("Progress.DWD"))

    def command(self, guid, command):
        root = self.request(
            '<cnpsXML TaskType="JobCommand" Command=%s GUID=%s/>'
            % (quoteattr(command), quoteattr(guid))
        )
        job = root.find("JobStatus")
        if job is None or job.get("GUID") != guid:
            raise CarbonError("%s reply does not describe the job" % command)
        return job.get("Status")


def wait_for(carbon, guid, wanted, what):
    deadline = time.monotonic() + DEADLINE_SECS
    while True:
        status, progress = carbon.status(guid)
        if wanted(status, progress):
            return status, progress
        if status in ("ERROR", "STOPPED", "INVALID"):
            raise CarbonError("job ended %s while waiting for %s" % (status, what))
        if time.monotonic() > deadline:
            raise CarbonError("timed out waiting for %s (at %s %d%%)" % (what, status, progress))
        time.sleep(0.02)


def main(host, port, source, dest):
    carbon = Carbon(host, int(port))

    version = carbon.request('<cnpsXML TaskType="Version"/>')
    if not version.get("Version"):
        raise CarbonError("Version reply has no Version")
    node = carbon.request('<cnpsXML TaskType="NodeCommand" Command="GetNodeStatus"/>')
    if node.find("NodeStatus") is None:
        raise CarbonError("NodeCommand reply has no NodeStatus")

    queued = carbon.request(
        '<cnpsXML TaskType="JobQueue" JobName="from python">'
        "<Sources><Module_0 Filename=%s/></Sources>"
        '<Destinations><Module_0 PresetGUID="{85DCCE70-0B4F-4328-86D1-5FC7756D9777}">'
        '<ModuleData CML_P_Path=%s CML_P_BaseFileName="%%s-py"/></Module_0></Destinations>'
        "</cnpsXML>" % (quoteattr(source), quoteattr(dest))
    )
    # The seed's page reads the GUID as the root's first attribute.
    first_attribute = next(iter(queued.attrib))
    if first_attribute != "GUID":
        raise CarbonError("first attribute is " + first_attribute)
    guid = queued.get("GUID")

    listed = carbon.request('<cnpsXML TaskType="JobList"/>')
    if guid not in [j.get("GUID") for j in listed.find("JobList")]:
        raise CarbonError("JobList does not list the job")

    wait_for(carbon, guid, lambda s, p: s == "STARTED" and p > 0, "the encode to start")
    if carbon.command(guid, "Pause") != "PAUSED":
        raise CarbonError("Pause did not pause")
    _, held = carbon.status(guid)
    time.sleep(0.5)
    status, later = carbon.status(guid)
    if status != "PAUSED" or later != held:
        raise CarbonError("paused job moved: %s %d%% -> %d%%" % (status, held, later))
    if carbon.command(guid, "Resume") != "STARTED":
        raise CarbonError("Resume did not resume")
    wait_for(carbon, guid, lambda s, p: p > held or s == "COMPLETED", "progress after resume")
    _, progress = wait_for(carbon, guid, lambda s, p: s == "COMPLETED", "completion")
    if progress != 100:
        raise CarbonError("completed at %d%%" % progress)

    info = carbon.request(
        '<cnpsXML TaskType="JobCommand" Command="QueryInfo" GUID=%s/>' % quoteattr(guid)
    )
    output = info.find("JobInfo/Destinations/Module_0/Output")
    if output is None or not output.get("Filename"):
        raise CarbonError("QueryInfo lists no output")
    print(guid)
    print(output.get("Filename"))


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    try:
        main(*sys.argv[1:])
    except (CarbonError, OSError, ET.ParseError, ValueError) as e:
        print("carbon_client.py: %s" % e, file=sys.stderr)
        sys.exit(1)
