/* livedump: symbol visibility. Only symbols marked LD_EXTERN leave the
 * shared library; the build uses -fvisibility=hidden for everything else. */
#ifndef LIVEDUMP_EXPORT_H
#define LIVEDUMP_EXPORT_H

#if defined(_WIN32) && defined(LD_BUILDING_DLL)
#define LD_EXTERN __declspec(dllexport)
#elif defined(__GNUC__)
#define LD_EXTERN __attribute__((visibility("default")))
#else
#define LD_EXTERN
#endif

#endif
