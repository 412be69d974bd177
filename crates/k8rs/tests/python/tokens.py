"""TokenRequest: a signed, expiring service account token the API server accepts."""
import time

from kubernetes import client, config

config.load_kube_config()
v1 = client.CoreV1Api()

for _ in range(100):
    try:
        v1.read_namespaced_service_account("default", "default")
        break
    except client.rest.ApiException:
        time.sleep(0.1)

req = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600))
resp = v1.create_namespaced_service_account_token("default", "default", req)
token = resp.status.token
assert token.count(".") == 2, token
assert resp.status.expiration_timestamp is not None

# The token authenticates as the service account.
cfg = client.Configuration.get_default_copy()
cfg.api_key = {"authorization": "Bearer " + token}
cfg.cert_file = None
cfg.key_file = None
as_sa = client.ApiClient(cfg)
review = client.AuthenticationV1Api(as_sa).create_self_subject_review(client.V1SelfSubjectReview())
user = review.status.user_info
assert user.username == "system:serviceaccount:default:default", user
assert "system:serviceaccounts:default" in user.groups, user.groups

# A tampered token is refused.
bad = client.Configuration.get_default_copy()
bad.api_key = {"authorization": "Bearer " + token[:-4] + "AAAA"}
bad.cert_file = None
bad.key_file = None
try:
    client.CoreV1Api(client.ApiClient(bad)).list_namespace()
    raise SystemExit("a tampered token was accepted")
except client.rest.ApiException as e:
    assert e.status == 401, e.status
print("ok")
