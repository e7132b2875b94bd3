"""Converts a pytest junit XML report to TAP (stdlib only)."""

import sys
import xml.etree.ElementTree as ET


def main(path: str) -> int:
    root = ET.parse(path).getroot()
    cases = list(root.iter("testcase"))
    print("1..%d" % len(cases))
    failed = 0
    for number, case in enumerate(cases, 1):
        name = "{}::{}".format(case.get("classname", ""), case.get("name", ""))
        skipped = case.find("skipped")
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if skipped is not None:
            print(
                "ok %d - %s # SKIP %s"
                % (number, name, (skipped.get("message") or "").replace("\n", " "))
            )
        elif problem is not None:
            failed += 1
            print("not ok %d - %s" % (number, name))
            text = (problem.get("message") or "") + "\n" + (problem.text or "")
            for line in text.strip().splitlines()[-40:]:
                print("# " + line)
        else:
            print("ok %d - %s" % (number, name))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
