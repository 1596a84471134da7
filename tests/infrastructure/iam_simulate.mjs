// Evaluates IAM requests with @cloud-copilot/iam-simulate (a real policy engine: every condition operator,
// identity policies, permissions boundaries and resource policies), for tests/infrastructure/iam_simulator.py.
//
// Protocol: one JSON object per line on stdin, {"policies": {...}, "requests": [...]}; one JSON array per
// line on stdout, a result per request in order: {"decision": "Allowed" | "ExplicitlyDenied" |
// "ImplicitlyDenied" | "Error", "errors"?: ..., "ignoredContextKeys"?: [...]}.
//   policies: {"identity": [{"name", "policy"}], "boundary"?: [{"name", "policy"}], "resource"?: policy}
//   request:  {"principal", "action", "resource", "account", "context": {key: string | [string]},
//              "unvalidated"?: true}
// "unvalidated" skips the engine's input validation (runUnsafeSimulation) for the few actions its data
// describes wrongly (iam_simulator.UNVALIDATED says which, and why); the evaluation itself is the same.
import { createInterface } from 'node:readline'
import { runSimulation, runUnsafeSimulation } from '@cloud-copilot/iam-simulate'

async function evaluate(policies, request) {
  const simulation = {
    request: {
      principal: request.principal,
      action: request.action,
      resource: { resource: request.resource, accountId: request.account },
      contextVariables: request.context ?? {},
    },
    identityPolicies: policies.identity ?? [],
    serviceControlPolicies: [],
    resourceControlPolicies: [],
  }
  if (policies.boundary) simulation.permissionBoundaryPolicies = policies.boundary
  if (policies.resource) simulation.resourcePolicy = policies.resource
  if (request.unvalidated) {
    // The unsafe path loads the resource policy without a name, which its analysis then reads: name it.
    if (policies.resource) {
      simulation.resourcePolicy = {
        __validated: true,
        policyDocument: policies.resource,
        metadata: { name: 'resource' },
        errors: [],
      }
    }
    const decision = await runUnsafeSimulation(simulation, { simulationMode: 'Strict' })
    return { decision, unvalidated: true }
  }
  const result = await runSimulation(simulation, { simulationMode: 'Strict' })
  if (result.resultType === 'error') return { decision: 'Error', errors: result.errors }
  const ignored =
    result.resultType === 'single'
      ? result.result.ignoredContextKeys
      : result.results.flatMap((r) => r.ignoredContextKeys ?? [])
  return { decision: result.overallResult, ignoredContextKeys: ignored ?? [] }
}

const lines = createInterface({ input: process.stdin, terminal: false })
for await (const line of lines) {
  if (!line.trim()) continue
  const batch = JSON.parse(line)
  const results = []
  for (const request of batch.requests) results.push(await evaluate(batch.policies, request))
  process.stdout.write(JSON.stringify(results) + '\n')
}
