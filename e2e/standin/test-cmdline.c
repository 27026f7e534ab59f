/*
 * Unit tests of cmdline.c: the command-line rewriting, without QEMU.
 */

#include "standin.h"


static void
testSmp(void)
{
    static const struct {
        const char *in;
        const char *out;        /* NULL: unchanged */
        guint guest;
        guint mirror;
    } cases[] = {
        { "2,sockets=2,cores=1,threads=1,mirrorvcpus=1",
          "1,sockets=2,cores=1,threads=1,maxcpus=2", 1, 1 },
        { "5,maxcpus=8,sockets=2,dies=1,clusters=1,cores=2,threads=2,mirrorvcpus=1",
          "4,maxcpus=8,sockets=2,dies=1,clusters=1,cores=2,threads=2", 4, 1 },
        { "cpus=3,mirrorvcpus=2", "cpus=1,maxcpus=3", 1, 2 },
        { "sockets=3,cores=1,threads=1,mirrorvcpus=1",
          "sockets=3,cores=1,threads=1,cpus=2,maxcpus=3", 2, 1 },
        { "4,sockets=4,cores=1,threads=1", NULL, 0, 0 },
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        CmdLine cl = { 0 };
        g_autoptr(GError) err = NULL;
        g_autofree char *out = cmdlineRewriteSmp(&cl, cases[i].in, &err);

        g_assert_no_error(err);
        g_assert_cmpstr(out, ==, cases[i].out);
        g_assert_cmpuint(cl.guestVcpus, ==, cases[i].guest);
        g_assert_cmpuint(cl.mirrorVcpus, ==, cases[i].mirror);
        cmdlineClear(&cl);
    }
}


static void
testSmpRefused(void)
{
    const char *bad[] = {
        "2,mirrorvcpus=2",                      /* no guest vCPU left */
        "2,maxcpus=4,mirrorvcpus=5",
        "2,sockets=2,foo,mirrorvcpus=1",        /* not key=value */
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        CmdLine cl = { 0 };
        g_autoptr(GError) err = NULL;
        g_autofree char *out = cmdlineRewriteSmp(&cl, bad[i], &err);

        g_assert_null(out);
        g_assert_nonnull(err);
        cmdlineClear(&cl);
    }
}


static void
testMachine(void)
{
    CmdLine cl = { .sev = true, .sevId = g_strdup("lsec0") };
    g_autofree char *a = cmdlineRewriteMachine(&cl, "pc,usb=off,confidential-guest-support=lsec0,acpi=off");
    g_autofree char *b = cmdlineRewriteMachine(&cl, "q35,memory-encryption=lsec0");
    g_autofree char *c = cmdlineRewriteMachine(&cl, "pc,confidential-guest-support=other");

    g_assert_cmpstr(a, ==, "pc,usb=off,acpi=off");
    g_assert_cmpstr(b, ==, "q35");
    g_assert_cmpstr(c, ==, "pc,confidential-guest-support=other");
    cmdlineClear(&cl);
}


static char *
parsed(CmdLine *cl, const char *const *args, GError **err)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    size_t i;

    g_ptr_array_add(argv, (char *) "qemu-mirror-standin");
    for (i = 0; args[i]; i++)
        g_ptr_array_add(argv, (char *) args[i]);
    cl->monFd = -1;
    if (!cmdlineParse(cl, "/usr/bin/qemu-system-x86_64", argv->len,
                      (char **) argv->pdata, err))
        return NULL;
    return cmdlineToString(cl->qemuArgv);
}


static void
testSevTarget(void)
{
    const char *const args[] = {
        "-name", "guest=a b",
        "-machine", "pc,confidential-guest-support=lsec0",
        "-bios", "/x/OVMF.fd",
        "-smp", "2,sockets=2,cores=1,threads=1,mirrorvcpus=1",
        "-chardev", "socket,id=charmonitor,fd=3,server=on,wait=off",
        "-mon", "chardev=charmonitor,id=monitor,mode=control",
        "-object", "{\"qom-type\":\"sev-guest\",\"id\":\"lsec0\",\"policy\":3}",
        "-fw_cfg", "name=opt/ovmf/PcdSevIsMigrationHelper,string=0",
        "-fw_cfg", "name=opt/ovmf/PcdSevIsMigrationTarget,string=1",
        "-pidfile", "/run/x.pid", "-daemonize", "-S",
        NULL
    };
    CmdLine cl = { 0 };
    g_autoptr(GError) err = NULL;
    g_autofree char *out = parsed(&cl, args, &err);

    g_assert_no_error(err);
    g_assert_cmpstr(out, ==,
                    "/usr/bin/qemu-system-x86_64 -name 'guest=a b' -machine pc "
                    "-smp 1,sockets=2,cores=1,threads=1,maxcpus=2 "
                    "-chardev socket,id=charmonitor,fd=3,server=on,wait=off "
                    "-mon chardev=charmonitor,id=monitor,mode=control "
                    "-S -incoming defer");
    g_assert_true(cl.sev);
    g_assert_cmpstr(cl.sevType, ==, "sev");
    g_assert_cmpint(cl.sevPolicy, ==, 3);
    /* what LAUNCH_START and LAUNCH_UPDATE_DATA take: no session here */
    g_assert_cmpstr(cl.sevFirmware, ==, "/x/OVMF.fd");
    g_assert_null(cl.sevDhCertFile);
    g_assert_null(cl.sevSessionFile);
    g_assert_false(cl.sevKernelHashes);
    g_assert_null(cl.kernel);
    g_assert_true(cl.target);
    g_assert_true(cl.daemonize);
    g_assert_true(cl.startPaused);
    g_assert_cmpstr(cl.pidfile, ==, "/run/x.pid");
    g_assert_cmpint(cl.monKind, ==, MON_FD);
    g_assert_cmpint(cl.monFd, ==, 3);
    g_assert_cmpint(cl.monArg, ==, MON_ARG_CHARDEV);
    g_assert_cmpstr(g_ptr_array_index(cl.qemuArgv, cl.monArgIndex), ==,
                    "socket,id=charmonitor,fd=3,server=on,wait=off");
    cmdlineClear(&cl);
}


static void
testPlain(void)
{
    const char *const args[] = {
        "-machine", "pc", "-bios", "/x/bios.bin", "-smp", "1",
        "-qmp", "unix:/tmp/a,,b.sock,server=on,wait=off", NULL
    };
    CmdLine cl = { 0 };
    g_autoptr(GError) err = NULL;
    g_autofree char *out = parsed(&cl, args, &err);

    g_assert_no_error(err);
    /* without SEV, -bios stays */
    g_assert_cmpstr(out, ==,
                    "/usr/bin/qemu-system-x86_64 -machine pc -bios /x/bios.bin "
                    "-smp 1 -qmp unix:/tmp/a,,b.sock,server=on,wait=off");
    g_assert_false(cl.sev);
    g_assert_null(cl.sevFirmware);
    g_assert_false(cl.target);
    g_assert_cmpint(cl.monKind, ==, MON_PATH);
    g_assert_cmpstr(cl.monPath, ==, "/tmp/a,b.sock");
    cmdlineClear(&cl);
}


/* the launch session and kernel hashes of the sev-guest object, in both
 * of its syntaxes, and the kernel, initrd and command line they cover */
static void
testSevLaunch(void)
{
    const char *const json[] = {
        "-bios", "/fw/OVMF.amdsev.fd",
        "-kernel", "/k/vmlinuz", "-initrd", "/k/initrd", "-append", "console=ttyS0 x=1",
        "-object", "{\"qom-type\":\"sev-guest\",\"id\":\"lsec0\",\"cbitpos\":47,"
        "\"reduced-phys-bits\":1,\"policy\":1,"
        "\"dh-cert-file\":\"/var/lib/libvirt/qemu/domain-1-g/dh_cert.base64\","
        "\"session-file\":\"/var/lib/libvirt/qemu/domain-1-g/session.base64\","
        "\"kernel-hashes\":true}",
        "-qmp", "unix:/tmp/m,server=on,wait=off", NULL
    };
    const char *const opts[] = {
        "-object", "sev-guest,id=lsec0,policy=0x5,dh-cert-file=/a,,b/dh,"
        "session-file=/s/session,kernel-hashes=on",
        "-bios", "/fw/OVMF.fd", "-qmp", "unix:/tmp/m,server=on,wait=off", NULL
    };
    const char *const noHashes[] = {
        "-object", "sev-guest,id=lsec0,kernel-hashes=off", NULL
    };
    CmdLine cl = { 0 };
    g_autoptr(GError) err = NULL;
    g_autofree char *out = parsed(&cl, json, &err);

    g_assert_no_error(err);
    g_assert_cmpstr(cl.sevDhCertFile, ==, "/var/lib/libvirt/qemu/domain-1-g/dh_cert.base64");
    g_assert_cmpstr(cl.sevSessionFile, ==, "/var/lib/libvirt/qemu/domain-1-g/session.base64");
    g_assert_true(cl.sevKernelHashes);
    g_assert_cmpint(cl.sevPolicy, ==, 1);
    g_assert_cmpstr(cl.sevFirmware, ==, "/fw/OVMF.amdsev.fd");
    g_assert_cmpstr(cl.kernel, ==, "/k/vmlinuz");
    g_assert_cmpstr(cl.initrd, ==, "/k/initrd");
    g_assert_cmpstr(cl.append, ==, "console=ttyS0 x=1");
    /* QEMU still boots the kernel; -bios and the object are gone */
    g_assert_cmpstr(out, ==,
                    "/usr/bin/qemu-system-x86_64 -kernel /k/vmlinuz -initrd /k/initrd "
                    "-append 'console=ttyS0 x=1' -qmp unix:/tmp/m,server=on,wait=off");
    cmdlineClear(&cl);

    g_clear_pointer(&out, g_free);
    out = parsed(&cl, opts, &err);
    g_assert_no_error(err);
    g_assert_cmpstr(cl.sevDhCertFile, ==, "/a,b/dh");
    g_assert_cmpstr(cl.sevSessionFile, ==, "/s/session");
    g_assert_true(cl.sevKernelHashes);
    g_assert_cmpint(cl.sevPolicy, ==, 5);
    g_assert_cmpstr(cl.sevFirmware, ==, "/fw/OVMF.fd");
    g_assert_null(cl.kernel);
    cmdlineClear(&cl);

    g_clear_pointer(&out, g_free);
    out = parsed(&cl, noHashes, &err);
    g_assert_no_error(err);
    g_assert_true(cl.sev);
    g_assert_false(cl.sevKernelHashes);
    g_assert_null(cl.sevDhCertFile);
    g_assert_null(cl.sevFirmware);
    cmdlineClear(&cl);
}


/* the firmware in pflash unit 0, when there is no -bios */
static void
testPflash(void)
{
    const char *const blockdev[] = {
        "-blockdev", "{\"driver\":\"file\",\"filename\":\"/usr/share/OVMF/OVMF_CODE.fd\","
        "\"node-name\":\"libvirt-pflash0-storage\",\"auto-read-only\":true}",
        "-blockdev", "{\"node-name\":\"libvirt-pflash0-format\",\"read-only\":true,"
        "\"driver\":\"raw\",\"file\":\"libvirt-pflash0-storage\"}",
        "-blockdev", "{\"driver\":\"file\",\"filename\":\"/var/lib/nvram/VARS.fd\","
        "\"node-name\":\"libvirt-pflash1-storage\"}",
        "-machine", "pc-q35-7.2,confidential-guest-support=lsec0,"
        "pflash0=libvirt-pflash0-format,pflash1=libvirt-pflash1-storage",
        "-object", "sev-guest,id=lsec0", NULL
    };
    const char *const drive[] = {
        "-drive", "if=pflash,format=raw,unit=1,file=/vars.fd",
        "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/code.fd",
        "-object", "sev-guest,id=lsec0", NULL
    };
    const char *const both[] = {
        "-bios", "/bios.fd", "-drive", "if=pflash,unit=0,file=/code.fd",
        "-object", "sev-guest,id=lsec0", NULL
    };
    const char *const *args[] = { blockdev, drive, both };
    const char *want[] = { "/usr/share/OVMF/OVMF_CODE.fd", "/code.fd", "/bios.fd" };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(args); i++) {
        CmdLine cl = { 0 };
        g_autoptr(GError) err = NULL;
        g_autofree char *out = parsed(&cl, args[i], &err);

        g_assert_no_error(err);
        g_assert_cmpstr(cl.sevFirmware, ==, want[i]);
        cmdlineClear(&cl);
    }
}


static void
testRefused(void)
{
    const char *const incoming[] = {
        "-fw_cfg", "name=opt/ovmf/PcdSevIsMigrationTarget,string=1",
        "-incoming", "defer", NULL
    };
    const char *const twoSev[] = {
        "-object", "sev-guest,id=a", "-object", "sev-guest,id=b", NULL
    };
    const char *const noId[] = { "-object", "sev-guest,policy=1", NULL };
    const char *const *bad[] = { incoming, twoSev, noId };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        CmdLine cl = { 0 };
        g_autoptr(GError) err = NULL;
        g_autofree char *out = parsed(&cl, bad[i], &err);

        g_assert_null(out);
        g_assert_nonnull(err);
        cmdlineClear(&cl);
    }
}


int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/cmdline/smp", testSmp);
    g_test_add_func("/cmdline/smp-refused", testSmpRefused);
    g_test_add_func("/cmdline/machine", testMachine);
    g_test_add_func("/cmdline/sev-target", testSevTarget);
    g_test_add_func("/cmdline/sev-launch", testSevLaunch);
    g_test_add_func("/cmdline/pflash", testPflash);
    g_test_add_func("/cmdline/plain", testPlain);
    g_test_add_func("/cmdline/refused", testRefused);
    return g_test_run();
}
