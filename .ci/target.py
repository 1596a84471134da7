"""Print the stack name and region of DEPLOY_ENV from samconfig.toml, as GitHub step outputs.

samconfig.toml is the one source of both: the workflow never names a stack or a region itself.
"""

import os
import tomllib

with open("samconfig.toml", "rb") as f:
    deploy = tomllib.load(f)[os.environ["DEPLOY_ENV"]]["deploy"]["parameters"]
print(f"stack={deploy['stack_name']}")
print(f"region={deploy['region']}")
