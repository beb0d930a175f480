// /login – sign in with email and password
import type { Metadata } from "next";
import { redirect } from "next/navigation";

import { getCurrentUser } from "@/lib/auth/current-user";
import { signIn } from "../actions";
import { AuthForm } from "../auth-form";

export const metadata: Metadata = { title: "Sign in · wavault" };

export default async function LoginPage() {
  if ((await getCurrentUser()).state === "signed_in") redirect("/dashboard");
  return (
    <main className="narrow">
      <h1>Sign in</h1>
      <AuthForm mode="login" action={signIn} />
    </main>
  );
}
