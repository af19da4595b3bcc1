# The pure library keeps out of I/O: run as
#   cmake -DNM=<nm> -DARCHIVE=<libodoo_relay_pure.a> -DLINKS=<a|b|c> -P check_pure.cmake
# It fails when
#   - the library's link interface (LINKS, its INTERFACE_LINK_LIBRARIES
#     joined with '|') names libevent, LMDB, libcurl, libsystemd or the I/O
#     library odoo_relay;
#   - a member of the archive needs a symbol of libevent (event_, evbuffer_,
#     bufferevent_, evconnlistener_, evutil_, evhttp_, evdns_, evthread_),
#     LMDB (mdb_), libcurl (curl_) or libsystemd (sd_);
#   - a member needs a relay_ symbol that no member defines: a function of
#     the I/O library, which would bring its dependencies along.
foreach(var NM ARCHIVE)
  if(NOT ${var})
    message(FATAL_ERROR "check_pure: ${var} is not set")
  endif()
endforeach()

set(problems)

string(REPLACE "|" ";" links "${LINKS}")
foreach(l ${links})
  if(l MATCHES "LIBEVENT|LMDB|CURL|SYSTEMD|event|lmdb|curl|systemd"
     OR l MATCHES "(^|[^_A-Za-z])odoo_relay$")
    list(APPEND problems "links ${l}")
  endif()
endforeach()

execute_process(COMMAND ${NM} -A -u ${ARCHIVE}
                OUTPUT_VARIABLE undefined RESULT_VARIABLE rc ERROR_VARIABLE err)
if(rc)
  message(FATAL_ERROR "check_pure: ${NM} -u ${ARCHIVE} failed: ${err}")
endif()
execute_process(COMMAND ${NM} --defined-only ${ARCHIVE}
                OUTPUT_VARIABLE defined RESULT_VARIABLE rc ERROR_VARIABLE err)
if(rc)
  message(FATAL_ERROR "check_pure: ${NM} --defined-only ${ARCHIVE} failed: ${err}")
endif()

# Lines "<address> <type> <name>": the relay_ functions and data defined here.
string(REGEX MATCHALL "[ \t][A-Za-z][ \t]+relay_[A-Za-z0-9_]*" defs "${defined}")
set(own)
foreach(d ${defs})
  string(REGEX REPLACE ".*[ \t]" "" d "${d}")
  list(APPEND own ${d})
endforeach()

# Lines "<archive>:<member>: U <name>" (GNU nm and llvm-nm with -A).
string(REPLACE "\n" ";" lines "${undefined}")
set(seen 0)
foreach(line ${lines})
  if(NOT line MATCHES "^(.*):[ \t]+U[ \t]+([^ \t]+)$")
    continue()
  endif()
  math(EXPR seen "${seen} + 1")
  set(where "${CMAKE_MATCH_1}")
  set(sym "${CMAKE_MATCH_2}")
  string(REGEX REPLACE "^.*:" "" where "${where}")
  string(REGEX REPLACE "@.*" "" sym "${sym}")
  if(sym MATCHES "^(event_|evbuffer_|bufferevent_|evconnlistener_|evutil_|evhttp_|evdns_|evthread_|mdb_|curl_|sd_)")
    list(APPEND problems "${where} uses ${sym}")
  elseif(sym MATCHES "^relay_")
    list(FIND own ${sym} at)
    if(at EQUAL -1)
      list(APPEND problems "${where} uses ${sym}, which the pure library does not define")
    endif()
  endif()
endforeach()

if(seen EQUAL 0 OR NOT own)
  message(FATAL_ERROR "check_pure: nothing read from ${ARCHIVE}: does ${NM} -A -u print <member>: U <name>?")
endif()
if(problems)
  list(JOIN problems "\n  " text)
  message(FATAL_ERROR "the pure library is not pure:\n  ${text}")
endif()
message(STATUS "pure: ${seen} undefined symbols, none of libevent, LMDB, libcurl, libsystemd or the I/O library")
