"""packaging/bootstrap.sh waits for another apt run to finish instead of
failing at once: its apt_install function runs here against stand-in
dpkg-query, apt-get, id and sleep commands, where the package lists are
locked for the first few tries of "apt-get update"."""
import os
import re
import subprocess
import sys
import tempfile

TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")

FAKES = {
    "dpkg-query": "#!/bin/sh\nexit 1\n",                      # nothing is installed
    "id": "#!/bin/sh\necho 0\n",                               # as root
    "sleep": "#!/bin/sh\nexit 0\n",                            # no real waiting here
    "apt-get": """#!/bin/sh
log="$FAKE_DIR/calls"
echo "$*" >>"$log"
case " $* " in
*" update "*)
	n=$(grep -c 'update' "$log")
	if [ "$n" -le "$LOCKED_TRIES" ]; then
		echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 1 (apt-get)" >&2
		exit 100
	fi
	exit 0 ;;
*" install "*)
	case " $* " in *"DPkg::Lock::Timeout="*) exit 0 ;; esac
	echo "E: install without a lock timeout" >&2
	exit 100 ;;
esac
exit 0
""",
}


def run(locked_tries, other_error=False):
    with tempfile.TemporaryDirectory() as d:
        for name, text in FAKES.items():
            path = os.path.join(d, name)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o755)
        src = open(os.path.join(TOP, "packaging", "bootstrap.sh")).read()
        fn = re.search(r"^apt_install\(\) \{.*?^\}", src, re.S | re.M).group(0)
        script = fn + "\napt_install some-package\n"
        env = dict(os.environ, PATH=d + ":" + os.environ["PATH"], FAKE_DIR=d,
                   LOCKED_TRIES=str(locked_tries))
        if other_error:
            with open(os.path.join(d, "apt-get"), "w") as f:
                f.write("#!/bin/sh\necho \"$*\" >>\"$FAKE_DIR/calls\"\n"
                        "echo 'E: The repository is not signed.' >&2\nexit 100\n")
        p = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                           timeout=60)
        calls = open(os.path.join(d, "calls")).read().splitlines() if os.path.exists(
            os.path.join(d, "calls")) else []
        return p, calls


def main():
    passed = failed = 0

    def check(cond, what):
        nonlocal passed, failed
        print(("ok   " if cond else "FAIL ") + what)
        passed += bool(cond)
        failed += not cond

    p, calls = run(3)
    updates = [c for c in calls if "update" in c]
    installs = [c for c in calls if "install" in c]
    check(p.returncode == 0, "apt_install succeeds once the lock is free (%s)" % p.stderr.strip())
    check(len(updates) == 4, "update was tried again while the lists were locked (%d tries)" %
          len(updates))
    check(len(installs) == 1 and "DPkg::Lock::Timeout=" in installs[0],
          "install waits for the dpkg lock by itself")
    check("waiting for another apt run" in p.stderr, "the wait is said once")
    p, calls = run(0, other_error=True)
    check(p.returncode != 0 and len(calls) == 1, "any other apt error fails at once")
    check("not signed" in p.stderr, "and shows apt's message")
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
