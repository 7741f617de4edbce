# Writes every ```cpp block of README.md to a source file, so the README's
# code is compiled and run by the tests (tests/readme/CMakeLists.txt).
#   programs using <zoopt/torch.hpp>:      torch_<line>.cpp, as written (built
#                                          when libtorch is found)
#   complete programs (they define main):  program_<line>.cpp, as written
#   fragments using zoopt::mpi:            mpi_<line>.cpp, main(argc, argv) runs it
#   other fragments:                       fragment_<line>.cpp, a function
#                                          readme_fragment_<line>() run by
#                                          fragments_main.cpp
# <line> is the line of the opening fence in README.md. Sets, in the caller:
# ZOOPT_README_PROGRAMS, ZOOPT_README_FRAGMENTS, ZOOPT_README_MPI,
# ZOOPT_README_TORCH (line lists).
# Number of newlines in `text`, into `out`.
function(zoopt_count_newlines out text)
  string(REGEX MATCHALL "\n" newlines "${text}")
  list(LENGTH newlines n)
  set(${out} ${n} PARENT_SCOPE)
endfunction()

function(zoopt_extract_readme readme out_dir)
  file(READ "${readme}" text)
  set(programs "")
  set(fragments "")
  set(mpi "")
  set(torch "")
  set(fence "```cpp\n")
  string(LENGTH "${fence}" fence_length)
  set(consumed 0)
  while(TRUE)
    string(FIND "${text}" "${fence}" at)
    if(at EQUAL -1)
      break()
    endif()
    string(SUBSTRING "${text}" 0 ${at} before)
    zoopt_count_newlines(lines_before "${before}")
    math(EXPR line "${consumed} + ${lines_before} + 1")
    math(EXPR start "${at} + ${fence_length}")
    string(SUBSTRING "${text}" ${start} -1 rest)
    string(FIND "${rest}" "```" stop)
    if(stop EQUAL -1)
      message(FATAL_ERROR "README.md:${line}: a ```cpp block is not closed")
    endif()
    string(SUBSTRING "${rest}" 0 ${stop} code)
    zoopt_count_newlines(code_lines "${code}")
    math(EXPR consumed "${line} + ${code_lines}")
    math(EXPR next "${stop} + 3")
    string(SUBSTRING "${rest}" ${next} -1 text)

    if(code MATCHES "zoopt/torch.hpp")
      file(CONFIGURE OUTPUT "${out_dir}/torch_${line}.cpp"
           CONTENT "// README.md line ${line}\n${code}" @ONLY)
      list(APPEND torch ${line})
    elseif(code MATCHES "int main\\(")
      file(CONFIGURE OUTPUT "${out_dir}/program_${line}.cpp"
           CONTENT "// README.md line ${line}\n${code}" @ONLY)
      list(APPEND programs ${line})
    elseif(code MATCHES "zoopt::mpi")
      file(CONFIGURE OUTPUT "${out_dir}/mpi_${line}.cpp" CONTENT
           "// README.md line ${line}\n#include \"prelude.hpp\"\n#include <zoopt/mpi.hpp>\n\nint main(int argc, char** argv) {\n  ZOOPT_README_CONTEXT\n  {\n${code}  }\n  return 0;\n}\n" @ONLY)
      list(APPEND mpi ${line})
    else()
      file(CONFIGURE OUTPUT "${out_dir}/fragment_${line}.cpp" CONTENT
           "// README.md line ${line}\n#include \"prelude.hpp\"\n\nvoid readme_fragment_${line}() {\n  ZOOPT_README_CONTEXT\n  {\n${code}  }\n}\n" @ONLY)
      list(APPEND fragments ${line})
    endif()
  endwhile()
  set(ZOOPT_README_PROGRAMS "${programs}" PARENT_SCOPE)
  set(ZOOPT_README_TORCH "${torch}" PARENT_SCOPE)
  set(ZOOPT_README_FRAGMENTS "${fragments}" PARENT_SCOPE)
  set(ZOOPT_README_MPI "${mpi}" PARENT_SCOPE)
endfunction()
