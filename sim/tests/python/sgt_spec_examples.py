# The two Python examples of the SGT API reference (shared/specs/sgt.txt), as printed there,
# except that the base URL comes from SGT_API_BASE so they can run against the simulator.
# tests/sgt_spec_python.rs runs this file.
import os, time, random
import requests
from datetime import datetime, timedelta, timezone

API = os.environ.get("SGT_API_BASE", "https://api.sgtsystems.com/v1")
headers = {
    "Authorization": f"Bearer {os.environ['SGT_API_KEY']}",
    "X-SGT-Tenant": "acme-industries",
    "User-Agent": "acme-erp-sync/1.4.2",
}

def get_with_retry(url, params, max_attempts=5):
    for attempt in range(max_attempts):
        r = requests.get(url, headers=headers, params=params, timeout=30)
        if r.status_code == 429:
            wait = int(r.headers.get("Retry-After", "5"))
            time.sleep(wait + random.uniform(0, 1))
            continue
        if 500 <= r.status_code < 600:
            time.sleep(min(60, 2 ** attempt) + random.uniform(0, 1))
            continue
        r.raise_for_status()
        return r.json()
    raise RuntimeError("exhausted retries")

end = datetime.now(timezone.utc)
start = end - timedelta(hours=24)
resp = get_with_retry(
    f"{API}/telemetry/aggregate",
    params={
        "device_id": "dev_42",
        "metric": "power_kw",
        "from": start.isoformat(),
        "to": end.isoformat(),
        "interval": "15m",
        "fn": "avg",
    },
)
for point in resp["data"]:
    print(point["ts"], point["value"])

def iter_devices():
    cursor = None
    while True:
        params = {"limit": 200}
        if cursor:
            params["cursor"] = cursor
        page = get_with_retry(f"{API}/devices", params=params)
        for d in page["data"]:
            yield d
        pg = page["meta"]["pagination"]
        if not pg["has_more"]:
            break
        cursor = pg["next"]

for device in iter_devices():
    print(device["id"], device["name"], device["status"])
