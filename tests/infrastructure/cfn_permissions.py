"""What CloudFormation asks IAM for, per resource, to create, update and delete the translated template.

``HANDLERS[type]`` lists, per handler, the permissions the resource type's registry schema names (its
``handlers`` section: what CloudFormation's own code for that type calls, with the credentials of the
deploy), and ``source`` says where each list was read:
- ``github.com/aws-cloudformation/<repo>/<path>@<commit>``: the schema in the public resource-provider
  repository (KMS, SNS, SSM and Logs are public);
- ``describe-type``: the schema as ``aws cloudformation describe-type --type RESOURCE --type-name TYPE
  --query Schema --output text | jq .handlers`` returns it (not public in a repository), transcribed,
  with the type's documentation page. Re-run that command to refresh a list.
``unused`` names what a schema lists that no property of this template makes the handler call (a VPC, a
layer, an import, auto scaling, ...), with the property that would: the roles grant none of it.
``extra`` adds what the schema omits but the API requires, with the API reference that says so.

CloudFormation calls a type's read handler after create and update (to return the model) and before
delete, so each phase needs its own list and read's (``Handlers.phase``).

``TARGETS[type][action]`` gives the resource(s) an action is authorized on, where that is not the
resource's own ARN (``deploy_requests`` builds the rest: tags as ``aws:RequestTag`` on the actions that
create and tag at once, the resource's tags as ``aws:ResourceTag`` on every other action, and the
condition keys CloudFormation's calls really carry). No request ever carries an ``aws:cloudformation:*``
tag: CloudFormation puts none on KMS keys (``cloudFormationSystemTags: false`` in the KMS schema), so no
policy may rely on them, for any type.

To add a resource type: its ``Handlers`` with the source, and its ``TARGETS`` and ``TAG_ON_CREATE`` rows
if it needs them; test_deploy_permissions.py fails on a type it does not know.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local_api.cfn_template import Stack
from tests.infrastructure.iam_simulator import Request

PHASES = ("create", "update", "delete")
_KMS_REPO = "github.com/aws-cloudformation/aws-cloudformation-resource-providers-kms"
_SNS_REPO = "github.com/aws-cloudformation/aws-cloudformation-resource-providers-sns"
_EVENTS_REPO = "github.com/aws-cloudformation/aws-cloudformation-resource-providers-events"
_DOCS = "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/"


@dataclass(frozen=True)
class Handlers:
    create: tuple[str, ...]
    read: tuple[str, ...]
    update: tuple[str, ...]
    delete: tuple[str, ...]
    source: str
    unused: dict[str, str] = field(default_factory=dict)  # permission -> the property that would need it
    extra: dict[str, str] = field(default_factory=dict)  # permission -> why (phase "all")

    def phase(self, name: str) -> list[str]:
        listed = {"create": self.create, "update": self.update, "delete": self.delete}[name]
        wanted = [*listed, *self.read, *self.extra]
        return [a for i, a in enumerate(wanted) if a not in self.unused and a not in wanted[:i]]


_LAMBDA_UNUSED = {
    "ec2:DescribeSecurityGroups": "VpcConfig",
    "ec2:DescribeSubnets": "VpcConfig",
    "ec2:DescribeVpcs": "VpcConfig",
    "ec2:DescribeNetworkInterfaces": "VpcConfig",
    "elasticfilesystem:DescribeMountTargets": "FileSystemConfigs",
    "kms:CreateGrant": "KmsKeyArn",
    "kms:Decrypt": "KmsKeyArn",
    "kms:Encrypt": "KmsKeyArn",
    "kms:GenerateDataKey": "KmsKeyArn",
    "lambda:GetLayerVersion": "Layers",
    "lambda:GetCodeSigningConfig": "CodeSigningConfigArn",
    "lambda:PutFunctionCodeSigningConfig": "CodeSigningConfigArn",
    "lambda:DeleteFunctionCodeSigningConfig": "CodeSigningConfigArn",
    "lambda:PutRuntimeManagementConfig": "RuntimeManagementConfig",
    "lambda:PutFunctionRecursionConfig": "RecursiveLoop",
    "s3:GetObjectVersion": "Code.S3ObjectVersion",
}


def _apigateway(kind: str) -> Handlers:
    return Handlers(
        create=("apigateway:POST",),
        read=("apigateway:GET",),
        update=("apigateway:PATCH", "apigateway:PUT", "apigateway:DELETE"),
        delete=("apigateway:DELETE",),
        source=f"describe-type; {_DOCS}aws-resource-apigatewayv2-{kind}.html",
    )


HANDLERS: dict[str, Handlers] = {
    "AWS::KMS::Key": Handlers(
        create=("kms:CreateKey", "kms:EnableKeyRotation", "kms:DisableKey", "kms:TagResource"),
        read=("kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags"),
        update=(
            *("kms:DescribeKey", "kms:DisableKey", "kms:DisableKeyRotation", "kms:EnableKey"),
            *("kms:EnableKeyRotation", "kms:PutKeyPolicy", "kms:TagResource", "kms:UntagResource"),
            "kms:UpdateKeyDescription",
        ),
        delete=("kms:DescribeKey", "kms:ScheduleKeyDeletion"),
        source=f"{_KMS_REPO}/key/aws-kms-key.json@373f1173f7332338609f0e8314a183f98d98dc55",
        unused={
            "kms:DisableKey": "Enabled: false (the keys stay enabled)",
            "kms:EnableKey": "Enabled (never disabled, so never re-enabled)",
            "kms:DisableKeyRotation": "EnableKeyRotation: false (rotation stays on)",
        },
    ),
    "AWS::KMS::Alias": Handlers(
        create=("kms:CreateAlias",),
        read=("kms:ListAliases",),
        update=("kms:UpdateAlias",),
        delete=("kms:DeleteAlias",),
        source=f"{_KMS_REPO}/alias/aws-kms-alias.json@2aa314947124c978e8157fd5321786032bc767a7",
    ),
    "AWS::SNS::Topic": Handlers(
        create=(
            *("sns:CreateTopic", "sns:TagResource", "sns:Subscribe", "sns:GetTopicAttributes"),
            *("sns:ListTagsForResource", "sns:ListSubscriptionsByTopic"),
        ),
        read=("sns:GetTopicAttributes", "sns:ListTagsForResource", "sns:ListSubscriptionsByTopic"),
        update=(
            *("sns:SetTopicAttributes", "sns:TagResource", "sns:UntagResource", "sns:Subscribe"),
            *("sns:Unsubscribe", "sns:GetTopicAttributes", "sns:ListTagsForResource", "sns:ListSubscriptionsByTopic"),
        ),
        delete=("sns:DeleteTopic", "sns:ListSubscriptionsByTopic", "sns:Unsubscribe"),
        source=f"{_SNS_REPO}/aws-sns-topic/aws-sns-topic.json@63efbb874c6994215ad147fffbde650ed6bfba70",
    ),
    "AWS::SNS::TopicPolicy": Handlers(
        create=("sns:SetTopicAttributes",),
        read=(),
        update=("sns:SetTopicAttributes",),
        delete=("sns:SetTopicAttributes",),
        source=f"{_SNS_REPO}/aws-sns-topicpolicy/aws-sns-topicpolicy.json@1317f0b0d56ab22afd97e1562289fd0ad0f3368e",
    ),
    "AWS::SNS::Subscription": Handlers(
        create=("sns:Subscribe", "sns:GetSubscriptionAttributes", "sns:GetTopicAttributes"),
        read=("sns:GetSubscriptionAttributes", "sns:GetTopicAttributes"),
        update=("sns:SetSubscriptionAttributes", "sns:GetSubscriptionAttributes", "sns:GetTopicAttributes"),
        delete=("sns:GetSubscriptionAttributes", "sns:GetTopicAttributes", "sns:Unsubscribe"),
        source=f"{_SNS_REPO}/aws-sns-subscription/aws-sns-subscription.json@056ca0bba4865253f67e69df8d87ff9962f4c6bd",
    ),
    "AWS::SSM::Parameter": Handlers(
        create=("ssm:PutParameter", "ssm:AddTagsToResource", "ssm:GetParameters"),
        read=("ssm:GetParameters",),
        update=("ssm:PutParameter", "ssm:AddTagsToResource", "ssm:RemoveTagsFromResource", "ssm:GetParameters"),
        delete=("ssm:DeleteParameter",),
        source="github.com/aws-cloudformation/aws-cloudformation-resource-providers-ssm/aws-ssm-parameter/"
        "aws-ssm-parameter.json@c32608a5d870294d418e61800f00d88db088e2d2",
    ),
    "AWS::Logs::LogGroup": Handlers(
        create=("logs:DescribeLogGroups", "logs:CreateLogGroup"),
        read=("logs:DescribeLogGroups",),
        update=("logs:DescribeLogGroups", "logs:PutRetentionPolicy", "logs:DeleteRetentionPolicy"),
        delete=("logs:DescribeLogGroups", "logs:DeleteLogGroup"),
        source="github.com/aws-cloudformation/aws-cloudformation-resource-providers-logs/aws-logs-loggroup/"
        "aws-logs-loggroup.json@8c47d60fd5b56f363c146dfc45f3722d49fcbf12",
        # That version predates the Tags property and retention set on create (describe-type adds them).
        extra={
            "logs:PutRetentionPolicy": "RetentionInDays on create (API_PutRetentionPolicy)",
            "logs:TagResource": "the stack's tags (API_TagResource; CreateLogGroup with tags needs it)",
            "logs:UntagResource": "the stack's tags changing (API_UntagResource)",
            "logs:ListTagsForResource": "the read handler returns Tags (API_ListTagsForResource)",
        },
    ),
    "AWS::DynamoDB::Table": Handlers(
        create=(
            *("dynamodb:CreateTable", "dynamodb:DescribeTable", "dynamodb:UpdateTimeToLive"),
            *("dynamodb:UpdateContinuousBackups", "dynamodb:TagResource", "dynamodb:UpdateContributorInsights"),
            *("dynamodb:ImportTable", "dynamodb:DescribeImport", "dynamodb:PutResourcePolicy"),
            *("dynamodb:EnableKinesisStreamingDestination", "application-autoscaling:RegisterScalableTarget"),
            *("iam:CreateServiceLinkedRole", "kms:CreateGrant", "kms:DescribeKey"),
        ),
        read=(
            *("dynamodb:DescribeTable", "dynamodb:DescribeTimeToLive", "dynamodb:DescribeContinuousBackups"),
            *("dynamodb:DescribeContributorInsights", "dynamodb:DescribeKinesisStreamingDestination"),
            *("dynamodb:ListTagsOfResource", "dynamodb:GetResourcePolicy"),
        ),
        update=(
            *("dynamodb:UpdateTable", "dynamodb:DescribeTable", "dynamodb:UpdateTimeToLive"),
            *("dynamodb:UpdateContinuousBackups", "dynamodb:TagResource", "dynamodb:UntagResource"),
            *("dynamodb:UpdateContributorInsights", "dynamodb:PutResourcePolicy", "dynamodb:DeleteResourcePolicy"),
            *("dynamodb:EnableKinesisStreamingDestination", "dynamodb:DisableKinesisStreamingDestination"),
            "application-autoscaling:RegisterScalableTarget",
        ),
        delete=("dynamodb:DeleteTable", "dynamodb:DescribeTable", "application-autoscaling:DeregisterScalableTarget"),
        source=f"describe-type; {_DOCS}aws-resource-dynamodb-table.html",
        unused={
            "dynamodb:UpdateContributorInsights": "ContributorInsightsSpecification",
            "dynamodb:ImportTable": "ImportSourceSpecification",
            "dynamodb:DescribeImport": "ImportSourceSpecification",
            "dynamodb:PutResourcePolicy": "ResourcePolicy",
            "dynamodb:DeleteResourcePolicy": "ResourcePolicy",
            "dynamodb:EnableKinesisStreamingDestination": "KinesisStreamSpecification",
            "dynamodb:DisableKinesisStreamingDestination": "KinesisStreamSpecification",
            "application-autoscaling:RegisterScalableTarget": "provisioned capacity with auto scaling (on demand)",
            "application-autoscaling:DeregisterScalableTarget": "provisioned capacity with auto scaling",
            "iam:CreateServiceLinkedRole": "auto scaling or replicas",
            "kms:CreateGrant": "SSESpecification.KMSMasterKeyId (AWS owned key)",
            "kms:DescribeKey": "SSESpecification.KMSMasterKeyId (AWS owned key)",
        },
    ),
    "AWS::S3::Bucket": Handlers(
        create=(
            *("s3:CreateBucket", "s3:PutBucketTagging", "s3:PutBucketVersioning", "s3:PutEncryptionConfiguration"),
            *("s3:PutBucketPublicAccessBlock", "s3:PutBucketOwnershipControls", "s3:PutLifecycleConfiguration"),
            *("s3:PutBucketCORS", "s3:PutBucketLogging", "s3:PutBucketNotification"),
        ),
        read=(
            *("s3:GetBucketAcl", "s3:GetBucketCORS", "s3:GetBucketLocation", "s3:GetBucketLogging"),
            *("s3:GetBucketNotification", "s3:GetBucketObjectLockConfiguration", "s3:GetBucketOwnershipControls"),
            *("s3:GetBucketPublicAccessBlock", "s3:GetBucketTagging", "s3:GetBucketVersioning", "s3:GetBucketWebsite"),
            *("s3:GetEncryptionConfiguration", "s3:GetLifecycleConfiguration", "s3:GetReplicationConfiguration"),
            *("s3:GetAccelerateConfiguration", "s3:GetAnalyticsConfiguration", "s3:GetInventoryConfiguration"),
            *("s3:GetIntelligentTieringConfiguration", "s3:GetMetricsConfiguration", "s3:ListBucket"),
        ),
        update=(
            *("s3:PutBucketTagging", "s3:PutBucketVersioning", "s3:PutEncryptionConfiguration"),
            *("s3:PutBucketPublicAccessBlock", "s3:PutBucketOwnershipControls", "s3:PutLifecycleConfiguration"),
            *("s3:PutBucketCORS", "s3:PutBucketLogging", "s3:PutBucketNotification", "s3:DeleteBucketWebsite"),
        ),
        delete=("s3:DeleteBucket", "s3:ListBucket"),
        source=f"describe-type; {_DOCS}aws-resource-s3-bucket.html",
        unused={
            "s3:PutBucketLogging": "LoggingConfiguration",
            "s3:PutBucketNotification": "NotificationConfiguration",
            "s3:DeleteBucketWebsite": "WebsiteConfiguration",
        },
    ),
    "AWS::S3::BucketPolicy": Handlers(
        create=("s3:GetBucketPolicy", "s3:PutBucketPolicy"),
        read=("s3:GetBucketPolicy",),
        update=("s3:GetBucketPolicy", "s3:PutBucketPolicy"),
        delete=("s3:GetBucketPolicy", "s3:DeleteBucketPolicy"),
        source=f"describe-type; {_DOCS}aws-resource-s3-bucketpolicy.html",
    ),
    "AWS::SecretsManager::Secret": Handlers(
        create=(
            "secretsmanager:DescribeSecret",
            "secretsmanager:GetRandomPassword",
            "secretsmanager:CreateSecret",
            "secretsmanager:TagResource",
        ),
        read=("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"),
        update=(
            *("secretsmanager:UpdateSecret", "secretsmanager:TagResource", "secretsmanager:UntagResource"),
            *("secretsmanager:GetRandomPassword", "secretsmanager:GetSecretValue"),
            *("secretsmanager:ReplicateSecretToRegions", "secretsmanager:RemoveRegionsFromReplication"),
        ),
        delete=(
            "secretsmanager:DeleteSecret",
            "secretsmanager:DescribeSecret",
            "secretsmanager:RemoveRegionsFromReplication",
        ),
        source=f"describe-type; {_DOCS}aws-resource-secretsmanager-secret.html",
        unused={
            "secretsmanager:GetRandomPassword": "GenerateSecretString",
            "secretsmanager:ReplicateSecretToRegions": "ReplicaRegions",
            "secretsmanager:RemoveRegionsFromReplication": "ReplicaRegions",
        },
        # Secrets Manager encrypts with the caller's credentials (the secret's KMS key): KMS checks the
        # deploy's own permission, with kms:ViaService (secrets manager's "Authentication and access
        # control for AWS KMS keys" page).
        extra={
            "kms:GenerateDataKey": "KmsKeyId: Secrets Manager encrypts SecretString with the key",
            "kms:Decrypt": "KmsKeyId: reading the secret (GetSecretValue) decrypts it",
        },
    ),
    "AWS::Lambda::Function": Handlers(
        create=(
            *("lambda:CreateFunction", "lambda:GetFunction", "lambda:PutFunctionConcurrency", "iam:PassRole"),
            *("s3:GetObject", "s3:GetObjectVersion", "lambda:TagResource", "lambda:GetRuntimeManagementConfig"),
            *(
                "lambda:PutRuntimeManagementConfig",
                "lambda:GetFunctionCodeSigningConfig",
                "lambda:GetCodeSigningConfig",
            ),
            *("lambda:GetLayerVersion", "lambda:PutFunctionRecursionConfig", "ec2:DescribeSecurityGroups"),
            *("ec2:DescribeSubnets", "ec2:DescribeVpcs", "elasticfilesystem:DescribeMountTargets"),
            *("kms:CreateGrant", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"),
        ),
        read=(
            "lambda:GetFunction",
            "lambda:GetFunctionCodeSigningConfig",
            "lambda:GetFunctionRecursionConfig",
            "lambda:GetRuntimeManagementConfig",
        ),
        update=(
            *("lambda:DeleteFunctionConcurrency", "lambda:GetFunction", "lambda:PutFunctionConcurrency"),
            *("lambda:ListTags", "lambda:TagResource", "lambda:UntagResource", "lambda:UpdateFunctionConfiguration"),
            *("lambda:UpdateFunctionCode", "iam:PassRole", "s3:GetObject", "s3:GetObjectVersion"),
            *("lambda:PutRuntimeManagementConfig", "lambda:PutFunctionCodeSigningConfig"),
            *("lambda:DeleteFunctionCodeSigningConfig", "lambda:PutFunctionRecursionConfig"),
            *("ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs", "kms:CreateGrant"),
        ),
        delete=("lambda:DeleteFunction", "lambda:GetFunctionRecursionConfig", "ec2:DescribeNetworkInterfaces"),
        source=f"describe-type; {_DOCS}aws-resource-lambda-function.html",
        unused=_LAMBDA_UNUSED,
    ),
    "AWS::Lambda::Permission": Handlers(
        create=("lambda:AddPermission",),
        read=("lambda:GetPolicy",),
        update=(),
        delete=("lambda:RemovePermission",),
        source=f"describe-type; {_DOCS}aws-resource-lambda-permission.html",
    ),
    "AWS::IAM::Role": Handlers(
        create=("iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:GetRolePolicy", "iam:TagRole"),
        read=("iam:GetRole", "iam:ListAttachedRolePolicies", "iam:ListRolePolicies", "iam:GetRolePolicy"),
        update=(
            *("iam:UpdateRole", "iam:UpdateRoleDescription", "iam:UpdateAssumeRolePolicy", "iam:TagRole"),
            *("iam:UntagRole", "iam:DeleteRolePermissionsBoundary", "iam:PutRolePermissionsBoundary"),
            *("iam:ListAttachedRolePolicies", "iam:ListRolePolicies", "iam:GetRolePolicy", "iam:DeleteRolePolicy"),
            *("iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:DetachRolePolicy"),
        ),
        delete=(
            *("iam:DeleteRole", "iam:DetachRolePolicy", "iam:DeleteRolePolicy", "iam:GetRole"),
            *("iam:ListAttachedRolePolicies", "iam:ListRolePolicies", "iam:ListInstanceProfilesForRole"),
        ),
        source=f"describe-type; {_DOCS}aws-resource-iam-role.html",
        unused={"iam:DeleteRolePermissionsBoundary": "PermissionsBoundary removed (it is only ever added)"},
    ),
    "AWS::CloudWatch::Alarm": Handlers(
        create=("cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:TagResource"),
        read=("cloudwatch:DescribeAlarms", "cloudwatch:ListTagsForResource"),
        update=(
            *("cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:TagResource"),
            "cloudwatch:UntagResource",
        ),
        delete=("cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms"),
        source=f"describe-type; {_DOCS}aws-resource-cloudwatch-alarm.html",
    ),
    "AWS::Lambda::Version": Handlers(
        create=(
            *("lambda:PublishVersion", "lambda:GetFunctionConfiguration", "lambda:PutProvisionedConcurrencyConfig"),
            *("lambda:GetProvisionedConcurrencyConfig", "lambda:PutRuntimeManagementConfig"),
            "lambda:GetRuntimeManagementConfig",
        ),
        read=(
            "lambda:GetFunctionConfiguration",
            "lambda:GetProvisionedConcurrencyConfig",
            "lambda:GetRuntimeManagementConfig",
        ),
        update=("lambda:GetFunctionConfiguration",),
        delete=("lambda:GetFunction", "lambda:DeleteFunction"),
        source=f"describe-type; {_DOCS}aws-resource-lambda-version.html",
        unused={
            "lambda:PutProvisionedConcurrencyConfig": "ProvisionedConcurrencyConfig",
            "lambda:PutRuntimeManagementConfig": "RuntimeManagementConfig",
        },
    ),
    "AWS::Lambda::Alias": Handlers(
        create=(
            "lambda:CreateAlias",
            "lambda:PutProvisionedConcurrencyConfig",
            "lambda:GetProvisionedConcurrencyConfig",
        ),
        read=("lambda:GetAlias", "lambda:GetProvisionedConcurrencyConfig"),
        update=(
            *("lambda:UpdateAlias", "lambda:GetAlias", "lambda:PutProvisionedConcurrencyConfig"),
            *("lambda:DeleteProvisionedConcurrencyConfig", "lambda:GetProvisionedConcurrencyConfig"),
        ),
        delete=("lambda:DeleteAlias", "lambda:GetAlias"),
        source=f"describe-type; {_DOCS}aws-resource-lambda-alias.html",
        unused={
            "lambda:PutProvisionedConcurrencyConfig": "ProvisionedConcurrencyConfig",
            "lambda:DeleteProvisionedConcurrencyConfig": "ProvisionedConcurrencyConfig",
        },
        # UpdatePolicy CodeDeployLambdaAliasUpdate: CloudFormation moves the alias through a CodeDeploy
        # deployment, started with its own (the execution role's) credentials:
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-updatepolicy.html
        extra=dict.fromkeys(
            (
                *("codedeploy:CreateDeployment", "codedeploy:GetDeployment", "codedeploy:GetDeploymentConfig"),
                *("codedeploy:GetDeploymentGroup", "codedeploy:GetApplication"),
                *("codedeploy:RegisterApplicationRevision", "codedeploy:GetApplicationRevision"),
            ),
            "UpdatePolicy CodeDeployLambdaAliasUpdate",
        ),
    ),
    "AWS::CodeDeploy::Application": Handlers(
        create=("codedeploy:CreateApplication", "codedeploy:TagResource"),
        read=("codedeploy:GetApplication", "codedeploy:ListTagsForResource"),
        update=("codedeploy:TagResource", "codedeploy:UntagResource"),
        delete=("codedeploy:DeleteApplication",),
        source=f"describe-type; {_DOCS}aws-resource-codedeploy-application.html",
    ),
    "AWS::CodeDeploy::DeploymentGroup": Handlers(
        create=("codedeploy:CreateDeploymentGroup", "codedeploy:GetDeploymentGroup", "iam:PassRole"),
        read=("codedeploy:GetDeploymentGroup", "codedeploy:ListTagsForResource"),
        update=(
            *("codedeploy:UpdateDeploymentGroup", "codedeploy:GetDeploymentGroup", "codedeploy:TagResource"),
            *("codedeploy:UntagResource", "iam:PassRole"),
        ),
        delete=("codedeploy:DeleteDeploymentGroup",),
        source=f"describe-type; {_DOCS}aws-resource-codedeploy-deploymentgroup.html",
    ),
    "AWS::ApiGatewayV2::Api": _apigateway("api"),
    "AWS::ApiGatewayV2::Integration": _apigateway("integration"),
    "AWS::ApiGatewayV2::Route": _apigateway("route"),
    "AWS::ApiGatewayV2::Authorizer": _apigateway("authorizer"),
    "AWS::ApiGatewayV2::Stage": Handlers(
        create=("apigateway:POST",),
        read=("apigateway:GET",),
        update=("apigateway:PATCH", "apigateway:PUT", "apigateway:DELETE"),
        delete=("apigateway:DELETE",),
        source=f"describe-type; {_DOCS}aws-resource-apigatewayv2-stage.html",
        # API Gateway delivers access logs as vended logs, set up with the caller's permissions:
        # https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-logging.html
        extra=dict.fromkeys(
            (
                *("logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery"),
                *("logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy"),
                *("logs:DescribeResourcePolicies", "logs:DescribeLogGroups"),
            ),
            "AccessLogSettings (http-api-logging.html: permissions to log to CloudWatch)",
        ),
    ),
    "AWS::Events::EventBus": Handlers(
        create=(
            *("events:CreateEventBus", "events:DescribeEventBus", "events:PutPermission"),
            *("events:ListTagsForResource", "events:TagResource"),
        ),
        read=("events:DescribeEventBus", "events:ListTagsForResource"),
        update=("events:TagResource", "events:UntagResource", "events:PutPermission", "events:DescribeEventBus"),
        delete=("events:DescribeEventBus", "events:DeleteEventBus"),
        source=f"{_EVENTS_REPO}/aws-events-eventbus/aws-events-eventbus.json@b1663d6cc90fd4bb108a4ae82485ae0f046c0e08",
        unused={"events:PutPermission": "Policy (the bus has no resource policy: only this account puts events)"},
    ),
    "AWS::Events::Rule": Handlers(
        create=("events:PutRule", "events:PutTargets"),
        read=("events:DescribeRule", "events:ListTargetsByRule"),
        update=("events:PutRule", "events:RemoveTargets", "events:PutTargets"),
        delete=("events:DeleteRule", "events:RemoveTargets", "events:ListTargetsByRule"),
        source=f"{_EVENTS_REPO}/aws-events-rule/aws-events-rule.json@b80553471ed79122e4c9e3a812a2eb8472369b4e",
        # A target with a RoleArn: PutTargets passes the role to EventBridge (API_PutTargets: "you must have
        # iam:PassRole"); the schema at that commit predates the check. SAM's Schedule event (the sweep's
        # hourly rule) targets a Lambda function: no RoleArn, so no iam:PassRole for it.
        extra={"iam:PassRole": "Targets[].RoleArn (API_PutTargets)"},
    ),
    "AWS::SQS::Queue": Handlers(
        create=(
            *("sqs:CreateQueue", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"),
            *("sqs:ListQueueTags", "sqs:TagQueue"),
        ),
        read=("sqs:GetQueueAttributes", "sqs:ListQueueTags"),
        update=(
            *("sqs:SetQueueAttributes", "sqs:GetQueueAttributes", "sqs:ListQueueTags"),
            *("sqs:TagQueue", "sqs:UntagQueue"),
        ),
        delete=("sqs:DeleteQueue", "sqs:GetQueueAttributes"),
        source=f"describe-type; {_DOCS}aws-resource-sqs-queue.html",
    ),
    "AWS::SQS::QueuePolicy": Handlers(
        create=("sqs:SetQueueAttributes",),
        read=("sqs:GetQueueAttributes",),
        update=("sqs:SetQueueAttributes",),
        delete=("sqs:SetQueueAttributes",),
        source=f"describe-type; {_DOCS}aws-resource-sqs-queuepolicy.html",
    ),
    "AWS::Lambda::EventSourceMapping": Handlers(
        create=(
            *("lambda:CreateEventSourceMapping", "lambda:GetEventSourceMapping", "lambda:TagResource"),
            *("kms:DescribeKey", "kms:GenerateDataKey", "kms:Decrypt"),
        ),
        read=("lambda:GetEventSourceMapping", "lambda:ListTags", "kms:Decrypt"),
        update=(
            *("lambda:UpdateEventSourceMapping", "lambda:GetEventSourceMapping", "lambda:ListTags"),
            *("lambda:TagResource", "lambda:UntagResource", "kms:DescribeKey", "kms:GenerateDataKey", "kms:Decrypt"),
        ),
        delete=("lambda:DeleteEventSourceMapping", "lambda:GetEventSourceMapping", "kms:Decrypt"),
        source=f"describe-type; {_DOCS}aws-resource-lambda-eventsourcemapping.html",
        unused=dict.fromkeys(
            ("kms:DescribeKey", "kms:GenerateDataKey", "kms:Decrypt"),
            "KmsKeyArn (the filter criteria are not encrypted with a key of ours)",
        ),
    ),
}

#: The tag-on-create pairs: the action that creates the resource with its tags, and the tagging action
#: AWS also checks in that same call (both see aws:RequestTag/* and aws:TagKeys).
TAG_ON_CREATE: dict[str, tuple[str, ...]] = {
    "AWS::KMS::Key": ("kms:CreateKey", "kms:TagResource"),
    "AWS::DynamoDB::Table": ("dynamodb:CreateTable", "dynamodb:TagResource"),
    "AWS::Lambda::Function": ("lambda:CreateFunction", "lambda:TagResource"),
    "AWS::IAM::Role": ("iam:CreateRole", "iam:TagRole"),
    "AWS::Logs::LogGroup": ("logs:CreateLogGroup", "logs:TagResource"),
    "AWS::SNS::Topic": ("sns:CreateTopic", "sns:TagResource"),
    "AWS::SSM::Parameter": ("ssm:PutParameter", "ssm:AddTagsToResource"),
    "AWS::SecretsManager::Secret": ("secretsmanager:CreateSecret", "secretsmanager:TagResource"),
    "AWS::CloudWatch::Alarm": ("cloudwatch:PutMetricAlarm", "cloudwatch:TagResource"),
    "AWS::CodeDeploy::Application": ("codedeploy:CreateApplication", "codedeploy:TagResource"),
    "AWS::Events::EventBus": ("events:CreateEventBus", "events:TagResource"),
    "AWS::SQS::Queue": ("sqs:CreateQueue", "sqs:TagQueue"),
    "AWS::Lambda::EventSourceMapping": ("lambda:CreateEventSourceMapping", "lambda:TagResource"),
}
#: Types that take no tags (their schema says "taggable": false, or they have no Tags property).
UNTAGGED = {
    "AWS::KMS::Alias",
    "AWS::Lambda::Version",
    "AWS::Lambda::Alias",
    "AWS::SNS::TopicPolicy",
    "AWS::SNS::Subscription",
    "AWS::S3::BucketPolicy",
    "AWS::Lambda::Permission",
    "AWS::ApiGatewayV2::Integration",
    "AWS::ApiGatewayV2::Route",
    "AWS::ApiGatewayV2::Authorizer",
    "AWS::Events::Rule",
    "AWS::SQS::QueuePolicy",
}


@dataclass(frozen=True)
class Deployed:
    """One resource of a resolved translated template, with the names and tags it gets."""

    stack: Stack
    logical_id: str
    tags: dict[str, str]

    @property
    def type(self) -> str:
        return str(self.stack.resources[self.logical_id]["Type"])

    @property
    def props(self) -> dict[str, Any]:
        return self.stack.properties(self.logical_id)

    @property
    def arn(self) -> str:
        return ARNS.get(self.type, lambda r: r.stack.arn(r.logical_id))(self)

    @property
    def region(self) -> str:
        return self.stack.region

    @property
    def account(self) -> str:
        return self.stack.account_id


def _apigateway_arn(collection: str) -> Callable[[Deployed], str]:
    """/apis/{id} for the API, /apis/{id}/{collection}/{item} for what belongs to it."""

    def arn(r: Deployed) -> str:
        if not collection:
            return f"arn:aws:apigateway:{r.region}::/apis/{r.stack.ref(r.logical_id)}"
        item = r.props["StageName"] if collection == "stages" else r.logical_id.lower()  # ids are AWS's
        return f"arn:aws:apigateway:{r.region}::/apis/{r.props['ApiId']}/{collection}/{item}"

    return arn


#: The resource's own ARN, where the resolver's ``GetAtt Arn`` is not the one IAM sees.
ARNS: dict[str, Callable[[Deployed], str]] = {
    "AWS::Logs::LogGroup": lambda r: f"arn:aws:logs:{r.region}:{r.account}:log-group:{r.props['LogGroupName']}",
    "AWS::SSM::Parameter": lambda r: f"arn:aws:ssm:{r.region}:{r.account}:parameter{r.props['Name']}",
    "AWS::KMS::Alias": lambda r: f"arn:aws:kms:{r.region}:{r.account}:{r.props['AliasName']}",
    "AWS::CloudWatch::Alarm": lambda r: f"arn:aws:cloudwatch:{r.region}:{r.account}:alarm:{r.props['AlarmName']}",
    "AWS::Lambda::Permission": lambda r: (
        str(r.props["FunctionName"])
        if str(r.props["FunctionName"]).startswith("arn:")
        else f"arn:aws:lambda:{r.region}:{r.account}:function:{r.props['FunctionName']}"
    ),
    "AWS::S3::BucketPolicy": lambda r: f"arn:aws:s3:::{r.props['Bucket']}",
    "AWS::Lambda::Version": lambda r: f"arn:aws:lambda:{r.region}:{r.account}:function:{r.props['FunctionName']}",
    "AWS::Lambda::Alias": lambda r: r.stack.ref(r.logical_id),
    "AWS::CodeDeploy::Application": lambda r: (
        f"arn:aws:codedeploy:{r.region}:{r.account}:application:{r.stack.ref(r.logical_id)}"
    ),
    "AWS::CodeDeploy::DeploymentGroup": lambda r: _deployment_group(
        r, r.props["ApplicationName"], r.stack.ref(r.logical_id)
    ),
    "AWS::Events::Rule": lambda r: f"arn:aws:events:{r.region}:{r.account}:rule/{r.props['Name']}",
    "AWS::SNS::TopicPolicy": lambda r: str(r.props["Topics"][0]),
    "AWS::SQS::QueuePolicy": lambda r: _queue_arn(r, r.props["Queues"][0]),
    "AWS::Lambda::EventSourceMapping": lambda r: (
        f"arn:aws:lambda:{r.region}:{r.account}:event-source-mapping:{r.stack.ref(r.logical_id)}"
    ),
    "AWS::SNS::Subscription": lambda r: str(r.props["TopicArn"]),
    "AWS::ApiGatewayV2::Api": _apigateway_arn(""),
    "AWS::ApiGatewayV2::Stage": _apigateway_arn("stages"),
    "AWS::ApiGatewayV2::Integration": _apigateway_arn("integrations"),
    "AWS::ApiGatewayV2::Route": _apigateway_arn("routes"),
    "AWS::ApiGatewayV2::Authorizer": _apigateway_arn("authorizers"),
}


def _queue_arn(r: Deployed, url: str) -> str:
    """The ARN of the stack's queue at ``url`` (a queue's Ref is its URL)."""
    (queue,) = [i for i in r.stack.of_type("AWS::SQS::Queue") if r.stack.ref(i) == url]
    return r.stack.arn(queue)


def _function_arn(r: Deployed) -> str:
    name = str(r.props["FunctionName"])
    return name if name.startswith("arn:") else f"arn:aws:lambda:{r.region}:{r.account}:function:{name}"


def _deployment_group(r: Deployed, application: str, group: str) -> str:
    return f"arn:aws:codedeploy:{r.region}:{r.account}:deploymentgroup:{application}/{group}"


def _alias_deployment(r: Deployed, action: str) -> list[str]:
    """What a CodeDeploy deployment of the alias is authorized on: its group, application or config."""
    policy = r.stack.resolve(r.stack.resources[r.logical_id]["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"])
    application, group = policy["ApplicationName"], policy["DeploymentGroupName"]
    if action == "codedeploy:GetDeploymentConfig":
        (group_id,) = [i for i in r.stack.of_type("AWS::CodeDeploy::DeploymentGroup") if r.stack.ref(i) == group]
        config = r.stack.properties(group_id)["DeploymentConfigName"]
        return [f"arn:aws:codedeploy:{r.region}:{r.account}:deploymentconfig:{config}"]
    if action in (
        "codedeploy:GetApplication",
        "codedeploy:RegisterApplicationRevision",
        "codedeploy:GetApplicationRevision",
    ):
        return [f"arn:aws:codedeploy:{r.region}:{r.account}:application:{application}"]
    return [_deployment_group(r, application, group)]


def _collection(r: Deployed) -> str:
    """API Gateway's create is a POST on the collection the new item joins."""
    return r.arn.rsplit("/", 1)[0] if r.type != "AWS::ApiGatewayV2::Api" else f"arn:aws:apigateway:{r.region}::/apis"


def _key_arn(r: Deployed, key: Any) -> str:
    text = str(key)
    return text if text.startswith("arn:") else f"arn:aws:kms:{r.region}:{r.account}:key/{text}"


#: Where an action is authorized, when not on the resource's own ARN: phase -> action -> resources.
TARGETS: dict[str, dict[str, Callable[[Deployed, str], list[str]]]] = {
    "AWS::KMS::Key": {
        # A key that does not exist has no ARN: CreateKey and the tagging it does are authorized on "*"
        # (a denied CreateKey-with-tags names no resource; KMS: "must not be restricted to particular keys").
        "kms:CreateKey": lambda r, phase: ["*"],
        "kms:TagResource": lambda r, phase: ["*"] if phase == "create" else [r.arn],
    },
    "AWS::KMS::Alias": {
        # An alias action is authorized on the alias and on the key it points at.
        a: (lambda r, phase: [r.arn, _key_arn(r, r.props["TargetKeyId"])])
        for a in ("kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias")
    }
    | {"kms:ListAliases": lambda r, phase: ["*"]},
    "AWS::Logs::LogGroup": {"logs:DescribeLogGroups": lambda r, phase: ["*"]},
    "AWS::ApiGatewayV2::Stage": {
        a: (lambda r, phase: ["*"])
        for a in (
            *("logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery"),
            *("logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy"),
            *("logs:DescribeResourcePolicies", "logs:DescribeLogGroups"),
        )
    },
    "AWS::Lambda::Function": {
        "iam:PassRole": lambda r, phase: [str(r.props["Role"])],
        "s3:GetObject": lambda r, phase: [f"arn:aws:s3:::{r.props['Code']['S3Bucket']}/{r.props['Code']['S3Key']}"],
    },
    "AWS::SecretsManager::Secret": {
        "kms:GenerateDataKey": lambda r, phase: [_key_arn(r, r.props["KmsKeyId"])],
        "kms:Decrypt": lambda r, phase: [_key_arn(r, r.props["KmsKeyId"])],
    },
    "AWS::Lambda::Alias": {
        a: (lambda r, phase, a=a: _alias_deployment(r, a)) for a in HANDLERS["AWS::Lambda::Alias"].extra
    },
    "AWS::CodeDeploy::DeploymentGroup": {"iam:PassRole": lambda r, phase: [str(r.props["ServiceRoleArn"])]},
    # A version's own calls name it (the function's ARN with the version number).
    "AWS::Lambda::Version": {"lambda:GetProvisionedConcurrencyConfig": lambda r, phase: [f"{r.arn}:1"]},
    "AWS::CodeDeploy::Application": {},
    # A mapping that does not exist yet has no ARN: CreateEventSourceMapping is authorized on "*" (the Service
    # Authorization Reference), narrowed by lambda:FunctionArn (_extra_context).
    "AWS::Lambda::EventSourceMapping": {
        "lambda:CreateEventSourceMapping": lambda r, phase: ["*"],
        "lambda:TagResource": lambda r, phase: [r.arn],
    },
    "AWS::Events::Rule": {
        "iam:PassRole": lambda r, phase: [str(t["RoleArn"]) for t in r.props["Targets"] if "RoleArn" in t]
    },
}
for _kind in [k for k in HANDLERS if k.startswith("AWS::ApiGatewayV2::")]:
    TARGETS.setdefault(_kind, {})["apigateway:POST"] = lambda r, phase: (
        [_collection(r)] if phase == "create" else [r.arn]
    )


def _tag_context(tags: dict[str, str]) -> dict[str, str | list[str]]:
    context: dict[str, str | list[str]] = {f"aws:RequestTag/{k}": v for k, v in tags.items()}
    context["aws:TagKeys"] = sorted(tags)
    return context


def _extra_context(r: Deployed, action: str, phase: str) -> dict[str, str | list[str]]:
    """Condition keys the call carries besides tags."""
    if action == "iam:PassRole":
        service = {"AWS::Lambda::Function": "lambda", "AWS::CodeDeploy::DeploymentGroup": "codedeploy"}.get(
            r.type, "events"
        )
        return {"iam:PassedToService": f"{service}.amazonaws.com"}
    if r.type == "AWS::Lambda::EventSourceMapping" and action.endswith("EventSourceMapping"):
        return {"lambda:FunctionArn": _function_arn(r)}
    if r.type == "AWS::SecretsManager::Secret" and action.startswith("kms:"):
        return {"kms:ViaService": f"secretsmanager.{r.region}.amazonaws.com", "kms:CallerAccount": r.account}
    if r.type == "AWS::IAM::Role" and action in ("iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy"):
        boundary = r.props.get("PermissionsBoundary")
        return {"iam:PermissionsBoundary": str(boundary)} if boundary else {}
    return {}


def resource_tags(r: Deployed, stack_tags: dict[str, str]) -> dict[str, str]:
    """The tags the resource carries: the stack's (CloudFormation propagates them) and its own."""
    if r.type in UNTAGGED:
        return {}
    own = r.props.get("Tags", [])
    own = {t["Key"]: t["Value"] for t in own} if isinstance(own, list) else dict(own)
    return {**stack_tags, **own}


def deploy_requests(r: Deployed, phase: str, stack_tags: dict[str, str]) -> list[Request]:
    """Every authorization CloudFormation's handlers for ``r`` make in ``phase`` (create, update, delete)."""
    handlers = HANDLERS[r.type]
    tags = resource_tags(r, stack_tags)
    creating = TAG_ON_CREATE.get(r.type, ()) if phase == "create" else ()
    requests = []
    for action in handlers.phase(phase):
        targets = TARGETS.get(r.type, {}).get(action, lambda r, phase: [r.arn])(r, phase)
        if action in creating:
            context = _tag_context(tags) if tags else {}
        else:
            context = {f"aws:ResourceTag/{k}": v for k, v in tags.items()}
        context = {**context, **_extra_context(r, action, phase)}
        for target in targets:
            on = _tags_of_another(r, target, stack_tags)
            request_context = context if on is None else {**_extra_context(r, action, phase), **on}
            requests.append(Request(action, target, request_context, why=f"{phase} {r.logical_id} ({r.type})"))
    return requests


def _tags_of_another(r: Deployed, target: str, stack_tags: dict[str, str]) -> dict[str, str | list[str]] | None:
    """An action on another resource of the stack (an alias's or a secret's key) sees that one's tags."""
    if target in ("*", r.arn):
        return None
    for logical_id in r.stack.present():
        other = Deployed(r.stack, logical_id, r.tags)
        if other.arn == target:
            return {f"aws:ResourceTag/{k}": v for k, v in resource_tags(other, stack_tags).items()}
    return None
