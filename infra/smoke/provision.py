"""Creates in moto what infra/template.yaml creates in AWS (table with gsi1 and TTL, KMS key, bucket,
queue with a dead-letter queue) and prints the MAILROOM_* variables the template would set."""
import json, sys, boto3
ep = sys.argv[1]
kw = dict(endpoint_url=ep, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
ddb, kms, s3, sqs = (boto3.client(s, **kw) for s in ("dynamodb", "kms", "s3", "sqs"))
key = kms.create_key(Description="smoke")["KeyMetadata"]["Arn"]
S = lambda n: {"AttributeName": n, "AttributeType": "S"}
ddb.create_table(TableName="smoke", BillingMode="PAY_PER_REQUEST",
  AttributeDefinitions=[S("pk"), S("sk"), S("gsi1pk"), S("gsi1sk")],
  KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
  GlobalSecondaryIndexes=[{"IndexName": "gsi1", "Projection": {"ProjectionType": "ALL"},
    "KeySchema": [{"AttributeName": "gsi1pk", "KeyType": "HASH"}, {"AttributeName": "gsi1sk", "KeyType": "RANGE"}]}],
  SSESpecification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key})
ddb.update_time_to_live(TableName="smoke", TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"})
s3.create_bucket(Bucket="smoke-raw")
dlq = sqs.create_queue(QueueName="smoke-dlq")["QueueUrl"]
dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
q = sqs.create_queue(QueueName="smoke", Attributes={"VisibilityTimeout": "1800",
  "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})})["QueueUrl"]
print(f"MAILROOM_TABLE=smoke MAILROOM_KMS_KEY_ID={key} MAILROOM_BUCKET=smoke-raw MAILROOM_QUEUE_URL={q}")
