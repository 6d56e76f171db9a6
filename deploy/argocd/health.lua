-- Argo CD health check for assay.dev/Evaluation (Lua 5.1, as Argo CD runs it).
-- Install: the `resource.customizations.health.assay.dev_Evaluation` key of argocd-cm
-- (deploy/argocd/argocd-cm-patch.yaml carries this file verbatim).
--
--   Pending, Queued, Running      -> Progressing (an Application waits for the result)
--   Succeeded                     -> Healthy
--   Failed, Expired, Accepted=False -> Degraded  (with the condition's message)
--   Suspended, Cancelled          -> Suspended (stopped on request; the record is kept)
--   status not yet written, or written for an older generation -> Progressing
local hs = {}

local function condition(status, kind)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function message_of(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    if c.reason ~= nil and c.reason ~= "" then
      return c.reason .. ": " .. c.message
    end
    return c.message
  end
  return fallback
end

local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Assay operator to accept the evaluation"
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end

local accepted = condition(status, "Accepted")
if accepted ~= nil and accepted.status == "False" then
  hs.status = "Degraded"
  hs.message = message_of(accepted, "The evaluation was not accepted")
  return hs
end

local phase = status.phase
local counts = status.taskCounts
local progress = ""
if counts ~= nil and counts.total ~= nil then
  progress = " (" .. (counts.succeeded or 0) .. "/" .. counts.total .. " tasks done)"
end

if phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = message_of(condition(status, "Succeeded"), "Evaluation succeeded")
elseif phase == "Failed" then
  hs.status = "Degraded"
  hs.message = message_of(condition(status, "Failed"), "Evaluation failed")
elseif phase == "Expired" then
  hs.status = "Degraded"
  hs.message = message_of(condition(status, "Expired"), "Auto-released before finishing") .. progress
elseif phase == "Suspended" or phase == "Cancelled" then
  hs.status = "Suspended"
  hs.message = message_of(condition(status, phase), "Evaluation " .. string.lower(phase)) .. progress
elseif phase == "Pending" or phase == "Queued" or phase == "Running" then
  hs.status = "Progressing"
  hs.message = message_of(condition(status, phase), phase) .. progress
else
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. tostring(phase)
end
return hs
