// sources: csrc/reach/cidr.c csrc/reach/model.c csrc/reach/eval.c csrc/reach/blocked.c csrc/reach/reach.c csrc/reach/jsonkeys.c csrc/register.c
/* libFuzzer target: the snapshot loader (lua/awsnet/reach and its C model) on any JSON
 * put in one account and region. reach.load must return a model or nil, err (never raise,
 * never crash), and every query on a model it returns must answer. Run from the repository
 * root (the Lua modules are found under lua/); cjson is Debian's lua-cjson. */
#include "fuzz_reach.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Returns the function run per input. */
static const char *const SETUP =
    "local cjson = require 'cjson.safe'\n"
    "local reach = require 'awsnet.reach'\n"
    "return function(input)\n"
    "local doc = cjson.decode(input)\n"
    "if type(doc) ~= 'table' then return end\n"
    "local model, err = reach.load({ accounts = { ['111111111111'] = { ['us-east-1'] = doc } } })\n"
    "if not model then assert(err.code == 'invalid_snapshot', tostring(err)) return end\n"
    "local names = {}\n"
    "for name in pairs(model._b.endpoints) do names[#names + 1] = name end\n"
    "table.sort(names)\n"
    "for i = 1, math.min(#names, 4) do\n"
    "  for j = 1, math.min(#names, 4) do\n"
    "    local r = model:trace{ src = names[i], dst = names[j], protocol = 'tcp', port = 443 }\n"
    "    if r then local _ = tostring(r) .. r:json() end\n"
    "  end\n"
    "end\n"
    "if names[1] then model:who_can_reach{ dst = names[1], protocol = 'tcp', port = 443 } end\n"
    "model:close()\n"
    "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_reach_run(SETUP, "reach.load raised", data, size);
    return 0;
}
