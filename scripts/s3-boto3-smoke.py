"""boto3 against a cellar gateway: the calls a Python drill script makes.

Run by s3-clients-smoke.sh with the endpoint and credentials in the environment
(CELLAR_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION) and a
work directory as its argument. Prints one "ok"/"FAIL" line per check and exits 1 if
any failed.
"""
import hashlib
import os
import sys
import urllib.request

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

work = sys.argv[1]
# Older botocore presigns with Signature V2 unless told otherwise; cellar verifies V4 only.
config = Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1})
s3 = boto3.client("s3", endpoint_url=os.environ["CELLAR_ENDPOINT"], config=config)
failed = 0


def check(name, fn):
    global failed
    try:
        fn()
        print("ok   boto3 " + name)
    except Exception as e:  # a failed check is reported, the others still run
        failed += 1
        print("FAIL boto3 %s: %r" % (name, e))


def expect_error(code, fn):
    try:
        fn()
    except ClientError as e:
        got = e.response["Error"]["Code"]
        assert got == code, "got %s, want %s" % (got, code)
        return
    raise AssertionError("no error, want " + code)


bucket = "boto3-smoke"
big = os.path.join(work, "boto3-big")
with open(big, "wb") as f:
    f.write(os.urandom(12 << 20))
digest = hashlib.md5(open(big, "rb").read()).hexdigest()


def put_get_metadata():
    s3.put_object(Bucket=bucket, Key="meta", Body=b"hello", ContentType="text/plain",
                  Metadata={"colour": "blue"}, CacheControl="no-cache")
    h = s3.head_object(Bucket=bucket, Key="meta")
    assert h["ContentType"] == "text/plain" and h["Metadata"] == {"colour": "blue"}, h
    assert h["CacheControl"] == "no-cache", h
    assert s3.get_object(Bucket=bucket, Key="meta")["Body"].read() == b"hello"


def ranged():
    body = s3.get_object(Bucket=bucket, Key="meta", Range="bytes=1-3")["Body"].read()
    assert body == b"ell", body


def multipart_up_down():
    cfg = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20)
    s3.upload_file(big, bucket, "big", Config=cfg)
    etag = s3.head_object(Bucket=bucket, Key="big")["ETag"]
    assert etag.endswith('-3"'), etag
    out = os.path.join(work, "boto3-big.down")
    s3.download_file(bucket, "big", out, Config=cfg)
    assert hashlib.md5(open(out, "rb").read()).hexdigest() == digest


def presigned():
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "meta"}, ExpiresIn=300)
    assert urllib.request.urlopen(url).read() == b"hello"
    put = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "via-url"}, ExpiresIn=300)
    urllib.request.urlopen(urllib.request.Request(put, data=b"posted", method="PUT")).read()
    assert s3.get_object(Bucket=bucket, Key="via-url")["Body"].read() == b"posted"


def presigned_v2():
    # botocore before 1.36 presigns with Signature V2 unless told otherwise.
    v2 = boto3.client("s3", endpoint_url=os.environ["CELLAR_ENDPOINT"],
                      config=Config(signature_version="s3", s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    url = v2.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "meta"}, ExpiresIn=300)
    assert "Signature=" in url and "X-Amz-Signature" not in url, url
    assert urllib.request.urlopen(url).read() == b"hello"
    assert v2.get_object(Bucket=bucket, Key="meta", Range="bytes=0-1")["Body"].read() == b"he"


def listing():
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["big", "meta", "via-url"], keys
    pages = s3.get_paginator("list_objects").paginate(Bucket=bucket, PaginationConfig={"PageSize": 1})
    assert [o["Key"] for p in pages for o in p.get("Contents", [])] == keys


def conditional():
    expect_error("PreconditionFailed", lambda: s3.get_object(Bucket=bucket, Key="meta", IfMatch='"nope"'))
    expect_error("InvalidRange", lambda: s3.get_object(Bucket=bucket, Key="meta", Range="bytes=10-"))


def copy_and_delete():
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "meta"})
    assert s3.head_object(Bucket=bucket, Key="copy")["Metadata"] == {"colour": "blue"}
    res = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in ["big", "meta", "via-url", "copy"]]})
    assert len(res.get("Deleted", [])) == 4 and not res.get("Errors"), res
    s3.delete_bucket(Bucket=bucket)


def bad_secret():
    bad = boto3.client("s3", endpoint_url=os.environ["CELLAR_ENDPOINT"], config=config,
                       aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"], aws_secret_access_key="wrong")
    expect_error("SignatureDoesNotMatch", lambda: bad.list_objects_v2(Bucket=bucket))


check("create bucket", lambda: s3.create_bucket(Bucket=bucket))
check("put and get with metadata", put_get_metadata)
check("ranged get", ranged)
check("12 MiB multipart upload and download", multipart_up_down)
check("presigned GET and PUT", presigned)
check("presigned GET and a GET with Signature V2", presigned_v2)
check("list v2 and paginated v1", listing)
check("conditional GET and bad range", conditional)
check("wrong secret refused", bad_secret)
check("copy, delete objects, delete bucket", copy_and_delete)
sys.exit(1 if failed else 0)
