"""Which service principal a compute action hands a role to, or runs code as.

Launching compute with a passed role (``compute_launch``) hands the role to the service
that runs the compute; running code on existing compute (``code_execution``) acts with
whatever role that compute already carries. In both cases the role is one whose trust
policy admits the service principal below, and for launches ``iam:PassedToService``
names that same principal. Sources: the AWS Service Authorization Reference pages of each
service (``iam:PassedToService`` values) and the roles' trust policies in AWS's and
Tencent Cloud's user guides (``cvm.qcloud.com``, ``scf.qcloud.com``, ``ccs.qcloud.com``
for TKE).
"""

from __future__ import annotations

# By lower-case action name first, then by lower-case service prefix.
_BY_ACTION: dict[str, tuple[str, ...]] = {
    # Systems Manager and Instance Connect run commands on EC2 instances, which act with
    # their instance profile's role.
    "ssm:sendcommand": ("ec2.amazonaws.com",),
    "ssm:startsession": ("ec2.amazonaws.com",),
    "ecs:executecommand": ("ecs-tasks.amazonaws.com",),
    # EMR steps run on the cluster's instances, with its EC2 instance profile role (the
    # EMR service role is the control plane's, not the steps'); opt-in runtime roles trust
    # that instance role, not a service.
    "elasticmapreduce:addjobflowsteps": ("ec2.amazonaws.com",),
    # Data Pipeline passes a pipeline role and an EC2 resource role.
    "datapipeline:createpipeline": ("datapipeline.amazonaws.com",
                                    "elasticmapreduce.amazonaws.com", "ec2.amazonaws.com"),
    # TAT runs commands on CVM instances (their CAM role is trusted by cvm.qcloud.com).
    "tat:invokecommand": ("cvm.qcloud.com",),
    "tat:runcommand": ("cvm.qcloud.com",),
}
_BY_SERVICE: dict[str, tuple[str, ...]] = {
    "ec2": ("ec2.amazonaws.com",),
    "ec2-instance-connect": ("ec2.amazonaws.com",),
    "lambda": ("lambda.amazonaws.com",),
    "glue": ("glue.amazonaws.com",),
    "cloudformation": ("cloudformation.amazonaws.com",),
    "ecs": ("ecs-tasks.amazonaws.com", "ecs.amazonaws.com"),
    "sagemaker": ("sagemaker.amazonaws.com",),
    "codebuild": ("codebuild.amazonaws.com",),
    "cvm": ("cvm.qcloud.com",),
    "scf": ("scf.qcloud.com",),
    "tke": ("ccs.qcloud.com",),
}


def service_principals(action: str) -> tuple[str, ...]:
    """Service principals whose roles ``action`` launches compute with or runs code as
    (empty when unknown)."""
    low = action.lower()
    found = _BY_ACTION.get(low)
    if found is not None:
        return found
    return _BY_SERVICE.get(low.partition(":")[0], ())
