-- shardis's Lua bootstrap: the redis API wrappers, the error handler and the sandbox.
-- Runs once when the interpreter is created; `prims` holds the Rust primitives.
local prims = ...
local G = _G
local dbg = debug
local rawpcall, error, type, tostring, select, rawget, rawset = pcall, error, type, tostring, select, rawget, rawset
local setmetatable, getmetatable, unpack, pairs = setmetatable, getmetatable, unpack, pairs
local errtext, killed = prims.errtext, prims.killed

-- The error handler: Redis's error table {err=, source=, line=}, pointing at the script line
-- (skipping C functions and this chunk's wrappers).
local function errhandler(err)
  local lvl = 2
  local i = dbg.getinfo(lvl, 'nSl')
  while i and (i.what == 'C' or i.source == '=shardis') do
    lvl = lvl + 1
    i = dbg.getinfo(lvl, 'nSl')
  end
  if type(err) == 'userdata' then
    -- Errors of Rust library functions: add the script position as luaL_error does.
    local m = errtext(err)
    if m:sub(1, 1) == '\1' then
      -- Raised by the debugger (abort, protocol error): Redis's plain error table.
      m = m:sub(2)
    elseif m ~= 'Script killed by user with SCRIPT KILL...' and i and i.currentline > 0 then
      m = i.short_src .. ':' .. i.currentline .. ': ' .. m
    end
    err = m
  end
  if type(err) ~= 'table' then err = {err = 'ERR ' .. tostring(err)} end
  if i then
    err['source'] = i.source
    err['line'] = i.currentline
  end
  return err
end

local function run(f, ...)
  local n = select('#', ...)
  if n == 0 then return xpcall(f, errhandler) end
  local a, b = ...
  return xpcall(function() return f(a, b) end, errhandler)
end

-- Redis's error table from an error text ("-CODE msg" or "msg").
local function trim(s) return (s:gsub('^[\r\n]+', ''):gsub('[\r\n]+$', '')) end
local function error_table(s)
  local code, msg
  if s:sub(1, 1) == '-' then
    local sp = s:find(' ', 1, true)
    if not sp then code, msg = 'ERR', s:sub(2) else code, msg = s:sub(2, sp - 1), s:sub(sp + 1) end
  else
    code, msg = 'ERR', s
  end
  return {err = code .. ' ' .. trim(msg)}
end

local raiser = prims.raiser
local redis = {}
redis.call = prims.rawcall
redis.pcall = prims.rawpcall
redis.error_reply = function(...)
  if select('#', ...) ~= 1 or type((...)) ~= 'string' then
    return error_table('wrong number or type of arguments')
  end
  local s = ...
  if s:sub(1, 1) ~= '-' then s = '-' .. s end
  return error_table(s)
end
redis.status_reply = function(...)
  if select('#', ...) ~= 1 or type((...)) ~= 'string' then
    return error_table('wrong number or type of arguments')
  end
  return {ok = (...)}
end
redis.sha1hex = raiser(function(...)
  if select('#', ...) ~= 1 then return error_table('wrong number of arguments'), true end
  local s = ...
  if type(s) ~= 'string' and type(s) ~= 'number' then s = '' end
  return prims.sha1hex(tostring(s)), false
end)
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.log = raiser(function(...)
  local n = select('#', ...)
  if n < 2 then return error_table('redis.log() requires two arguments or more.'), true end
  local level = ...
  if type(level) ~= 'number' then return error_table('First argument must be a number (log level).'), true end
  if level < 0 or level > 3 then return error_table('Invalid debug level.'), true end
  local parts = {}
  for j = 2, n do
    local v = select(j, ...)
    if type(v) == 'string' or type(v) == 'number' then parts[#parts + 1] = tostring(v) end
  end
  prims.log(level, table.concat(parts, ' '))
  return nil, false
end)
redis.setresp = raiser(function(...)
  if not prims.incontext() then return error_table('redis.setresp can only be called inside a script invocation'), true end
  if select('#', ...) ~= 1 then return error_table('redis.setresp() requires one argument.'), true end
  local v = ...
  if v ~= 2 and v ~= 3 then return error_table('RESP version must be 2 or 3.'), true end
  prims.setresp(v)
  return nil, false
end)
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.set_repl = raiser(function(...)
  if not prims.incontext() then return error_table('redis.set_repl can only be called inside a script invocation'), true end
  if select('#', ...) ~= 1 then return error_table('redis.set_repl() requires two arguments.'), true end
  local f = ...
  if type(f) ~= 'number' or f < 0 or f > 3 or f % 1 ~= 0 then
    return error_table('Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.'), true
  end
  prims.setrepl(f)
  return nil, false
end)
redis.replicate_commands = function() return true end
redis.breakpoint = prims.ldbbreakpoint
redis.debug = prims.ldbdebug
redis.acl_check_cmd = raiser(function(...)
  if not prims.incontext() then return error_table('redis.acl_check_cmd can only be called inside a script invocation'), true end
  if select('#', ...) < 1 then return error_table('Please specify at least one argument for this redis lib call'), true end
  if not prims.cmdexists(tostring((...))) then return error_table('Invalid command passed to redis.acl_check_cmd()'), true end
  return prims.aclcheck(...), false
end)
redis.REDIS_VERSION = prims.version
redis.REDIS_VERSION_NUM = prims.version_num

-- pcall returns the err text of Redis error tables, and never catches a kill.
local function pcall_fix(ok, ...)
  if ok then return true, ... end
  local e = ...
  if killed() then error(e, 0) end
  if type(e) == 'userdata' then e = errtext(e) end
  if type(e) == 'table' then
    local m = e.err
    if type(m) == 'string' then e = m end
  end
  return false, e
end
local function safe_pcall(...) return pcall_fix(rawpcall(...)) end

math.random = function(...)
  local r = prims.random() % 2147483647 / 2147483647
  local n = select('#', ...)
  if n == 0 then return r end
  local l, u = ...
  if n == 1 then
    u = math.floor(l)
    if u < 1 then error("bad argument #1 to 'random' (interval is empty)", 2) end
    return math.floor(r * u) + 1
  elseif n == 2 then
    l, u = math.floor(l), math.floor(u)
    if l > u then error("bad argument #2 to 'random' (interval is empty)", 2) end
    return math.floor(r * (u - l + 1)) + l
  end
  error('wrong number of arguments', 2)
end
math.randomseed = function(s) prims.randomseed(math.floor(s)) end

-- The sandbox.
local protected = setmetatable({}, {__mode = 'k'})
local function ro_error() error('Attempt to modify a readonly table', 2) end
local function protect(t, strict)
  local proxy = {}
  local index = t
  if strict then
    index = function(_, k)
      local v = t[k]
      if v == nil then
        error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
      end
      return v
    end
  end
  local mt = {__index = index, __newindex = ro_error}
  mt.__metatable = setmetatable({}, {__index = mt, __newindex = ro_error})
  setmetatable(proxy, mt)
  protected[proxy] = true
  return proxy
end

local visible = {}
-- getfenv, setfenv and newproxy are deprecated (lua-enable-deprecated-api, default no).
for _, name in pairs({'assert', 'collectgarbage', 'error', 'gcinfo', 'ipairs', 'next',
    'pairs', 'rawequal', 'rawget', 'select', 'tonumber', 'tostring', 'type', 'xpcall',
    '_VERSION'}) do
  visible[name] = G[name]
end
visible.pcall = safe_pcall
-- Lua 5.1.5's unpack overflows on huge ranges; check them as Redis's patched Lua does.
visible.unpack = function(...)
  local t, i, j = ...
  if i == nil then i = 1 end
  if j == nil and type(t) == 'table' then j = #t end
  if type(i) == 'number' and type(j) == 'number' then
    if i > j then return end
    if j - i >= 2147483647 then error('too many results to unpack', 2) end
  end
  -- Same arguments as given: the C stack allowance counts them.
  return unpack(...)
end
visible.setmetatable = function(t, mt)
  if protected[t] then error('Attempt to modify a readonly table', 0) end
  return setmetatable(t, mt)
end
visible.rawset = function(t, k, v)
  if protected[t] then error('Attempt to modify a readonly table', 0) end
  return rawset(t, k, v)
end
-- Binary chunks are refused, as Redis does: loading one yields nil.
local function text_only(loader)
  return function(chunk, ...)
    if type(chunk) == 'string' and chunk:sub(1, 1) == '\27' then
      return nil, 'binary chunks are not allowed'
    end
    return loader(chunk, ...)
  end
end
visible.loadstring = text_only(loadstring)
visible.load = function(f, ...)
  if type(f) == 'function' then
    local parts = {}
    while true do
      local p = f()
      if p == nil or p == '' then break end
      parts[#parts + 1] = p
    end
    return visible.loadstring(table.concat(parts), ...)
  end
  return load(f, ...)
end
-- Metatables of basic types (strings) are handed out read-only. The string metatable's
-- __index is the script's own (protected) `string`, so `getmetatable('').__index == string`
-- holds as in Redis.
local string_mt_view
visible.getmetatable = function(v)
  local mt = getmetatable(v)
  if mt ~= nil and type(v) ~= 'table' and type(v) ~= 'userdata' and type(mt) == 'table' then
    if type(v) == 'string' then
      if string_mt_view == nil then
        local copy = {}
        for k, x in pairs(mt) do copy[k] = x end
        if copy.__index == string then copy.__index = visible.string end
        string_mt_view = protect(copy)
      end
      return string_mt_view
    end
    return protect(mt)
  end
  return mt
end
visible.coroutine = protect(coroutine)
visible.string = protect(string)
visible.table = protect(table)
visible.math = protect(math)
visible.redis = protect(redis)
visible.cjson = protect(prims.cjson)
visible.bit = protect(prims.bit)
visible.struct = protect(prims.struct)
visible.cmsgpack = protect(prims.cmsgpack)
visible.__redis__err__handler = errhandler

local env = {}
local env_mt = {
  __index = function(_, k)
    local v = rawget(visible, k)
    if v == nil then
        error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
    end
    return v
  end,
  __newindex = ro_error,
}
env_mt.__metatable = setmetatable({}, {__index = env_mt, __newindex = ro_error})
setmetatable(env, env_mt)
protected[env] = true
visible._G = env

-- FUNCTION LOAD: the library body sees only the register API and logging.
local register_prim = prims.register_function
local load_redis = {
  register_function = raiser(function(...)
    local e = register_prim(...)
    if e then return {err = 'ERR ' .. e}, true end
    return nil, false
  end),
  log = redis.log,
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  REDIS_VERSION = prims.version, REDIS_VERSION_NUM = prims.version_num,
}
local load_visible = {redis = protect(load_redis, true)}

-- A fresh library environment: reads see `load_visible` while loading and `visible` at
-- call time; writes are refused.
local function lib_env()
  local state = {loading = true}
  local e = {}
  local mt = {
    __index = function(_, k)
      local v = rawget(state.loading and load_visible or visible, k)
      if v == nil then
        error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
      end
      return v
    end,
    __newindex = function(_, k)
      error("Attempt to modify a readonly table", 2)
    end,
  }
  mt.__metatable = setmetatable({}, {__index = mt, __newindex = ro_error})
  setmetatable(e, mt)
  protected[e] = true
  return e, function() state.loading = false end
end

-- Debugger helpers (scripting/ldb.rs), called from its line hook: level 1 is the helper,
-- level 2 the script function the hook stopped in (a hook adds no frame of its own).
local getlocal, getinfo = dbg.getlocal, dbg.getinfo
local ldb = {}
function ldb.locals()
  local vars = {}
  local i = 1
  while true do
    local name, v = getlocal(2, i)
    if name == nil then break end
    if not name:find('(*temporary)', 1, true) then vars[#vars + 1] = {name, v} end
    i = i + 1
  end
  return vars
end
function ldb.getvar(want)
  local level = 2
  while getinfo(level, 'l') do
    local i = 1
    while true do
      local name, v = getlocal(level, i)
      if name == nil then break end
      if name == want then return true, v end
      i = i + 1
    end
    level = level + 1
  end
  if want == 'KEYS' or want == 'ARGV' then return true, rawget(visible, want) end
  return false
end
function ldb.trace()
  local frames = {}
  local level = 2
  while true do
    local info = getinfo(level, 'Snl')
    if not info then break end
    if info.short_src:find('user_script', 1, true) then
      frames[#frames + 1] = {level == 2, info.name or 'top level', info.currentline}
    end
    level = level + 1
  end
  return frames
end
function ldb.eval(code)
  local f = loadstring('return ' .. code, '@ldb_eval')
  if not f then
    local err
    f, err = loadstring(code, '@ldb_eval')
    if not f then return false, err end
  end
  setfenv(f, env)
  return rawpcall(f)
end
function ldb.redis(...)
  rawpcall(redis.call, ...)
end

return {visible = visible, env = env, run = run, lib_env = lib_env, ldb = ldb}
