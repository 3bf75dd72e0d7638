"""The init container's script: put the models where the model server looks for them.

Small local models come from the `<name>-models` ConfigMap; models given as URIs (a blob
with a SAS token, any http(s) URL) are downloaded, with retries. A failure names the host
(not the query string: it may hold a SAS token), which the diagnosis maps onto the
model-deploy phase's checks. Runs with the model image's own Python, standard library only.
"""

FETCH_SCRIPT = """
import json, os, shutil, sys, time, urllib.error, urllib.parse, urllib.request
root = os.environ["AKSFLIGHT_MODEL_ROOT"]
embedded = os.path.join(os.environ["AKSFLIGHT_EMBEDDED"], "azureml-models")
if os.path.isdir(embedded):
    shutil.copytree(embedded, root, dirs_exist_ok=True)
    print("copied the embedded models", flush=True)
for item in json.loads(os.environ.get("AKSFLIGHT_MODEL_URIS") or "[]"):
    parts = urllib.parse.urlsplit(item["uri"])
    shown = f"{parts.scheme}://{parts.netloc}{parts.path}"
    target = os.path.join(root, item["path"])
    os.makedirs(os.path.dirname(target), exist_ok=True)
    error = None
    for attempt in range(5):
        try:
            with urllib.request.urlopen(item["uri"], timeout=60) as answer:
                with open(target + ".part", "wb") as out:
                    shutil.copyfileobj(answer, out, 1024 * 1024)
            os.replace(target + ".part", target)
            error = None
            break
        except (urllib.error.URLError, OSError, ValueError) as exc:
            error = exc
            time.sleep(min(2 ** attempt, 10))
    if error is not None:
        print(f"aksflight: cannot download {shown} (host {parts.hostname}): {error}",
              file=sys.stderr, flush=True)
        sys.exit(1)
    print(f"downloaded {shown}", flush=True)
"""
