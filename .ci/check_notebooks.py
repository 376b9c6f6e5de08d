"Fail if any committed notebook carries outputs, execution counts or widget state."
import json
import subprocess
import sys
from pathlib import Path

files = subprocess.run(["git", "ls-files", "*.ipynb"], capture_output=True, text=True, check=True).stdout.split()
bad = []
for f in files:
    nb = json.loads(Path(f).read_text())
    outputs = sum(1 for c in nb.get("cells", []) if c.get("outputs"))
    counts = sum(1 for c in nb.get("cells", []) if c.get("execution_count"))
    widgets = "widgets" in nb.get("metadata", {})
    if outputs or counts or widgets:
        bad.append(f"{f}: {outputs} cells with outputs, {counts} execution counts{', widget state' if widgets else ''}")
print(f"{len(files)} notebooks checked")
if bad:
    print("FAIL: notebooks must be committed without outputs or widget state (run nbdev-clean):", *bad, sep="\n  ")
    sys.exit(1)
